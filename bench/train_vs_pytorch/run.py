#!/usr/bin/python3
"""Times the C++ trainer against the same models in PyTorch, per epoch, in one run.

    /usr/bin/python3 bench/train_vs_pytorch/run.py --binary build/bin/train_bench [--quick]

For each architecture: train_bench trains it and dumps its windows and initial weights; the
PyTorch twin (torch_twin.py) then trains the same model from the same weights on the same
windows with the same batch size, AdamW settings, cosine schedule and clipping, on the same
number of threads (PyTorch also on one thread, keeping its faster time). Prints a Markdown table (per-epoch medians, speed-up, loss after the last
epoch). Skips the PyTorch half, saying so, where torch is not installed.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# name, arch, width, rank, unfolds, windows, batch, shard, epochs, target speed-up. The LTC
# teacher's batch is small (its PyTorch graph holds B x 64 x 64 tensors for 600 unfolds), so
# its C++ shards are 8 samples to give both threads work.
CASES = [
    ("DLNet teacher (155,749 params)", "dlnet", 128, 0, 0, 4096, 64, 16, 3, 3.0),
    ("LTC teacher (64 units, 6 unfolds)", "ltc", 64, 0, 6, 256, 16, 8, 2, 3.0),
    ("Euler student, width 16", "euler", 16, 0, 0, 4096, 64, 16, 3, 10.0),
    ("Euler student, width 16, rank 4", "euler", 16, 4, 0, 4096, 64, 16, 3, 10.0),
    ("Euler student, width 8", "euler", 8, 0, 0, 4096, 64, 16, 3, 10.0),
    ("DLNet-style student, width 16", "dlnet-student", 16, 0, 0, 4096, 64, 16, 3, 10.0),
]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default=os.path.join(HERE, "../../build/bin/train_bench"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--torch-threads", default="",
                        help="comma-separated PyTorch thread counts to try, fastest kept "
                             "(default: 1 and --threads)")
    parser.add_argument("--data", default="", help="data folder (default: ../shared/data)")
    parser.add_argument("--quick", action="store_true", help="fewer windows, one epoch less")
    parser.add_argument("--only", default="", help="substring of the case names to run")
    parser.add_argument("--json", default="", help="also write the figures to this file")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        import torch_twin
        have_torch = True
    except ImportError as e:
        have_torch = False
        print(f"skipped PyTorch: {e}. Install python3-torch (scripts/setup --with-bench) "
              "to compare; C++ figures only.")
    lr, min_lr, wd, clip = 1e-3, 1e-5, 1e-2, 1.0
    rows, results = [], []
    for name, arch, width, rank, unfolds, windows, batch, shard, epochs, target in CASES:
        if args.only and args.only not in name:
            continue
        if args.quick:
            windows, epochs = max(windows // 4, batch * 2), max(epochs - 1, 2)
        with tempfile.TemporaryDirectory() as dump:
            cmd = [args.binary, "--arch", arch, "--width", str(width), "--rank", str(rank),
                   "--unfolds", str(unfolds), "--windows", str(windows), "--batch", str(batch),
                   "--shard", str(shard),
                   "--epochs", str(epochs), "--threads", str(args.threads), "--lr", str(lr),
                   "--min-lr", str(min_lr), "--wd", str(wd), "--clip", str(clip),
                   "--dump", dump] + (["--data", args.data] if args.data else [])
            cc = json.loads(subprocess.run(cmd, check=True, capture_output=True,
                                           text=True).stdout.strip().splitlines()[-1])
            py = None
            if have_torch:
                # PyTorch gets its better thread count: on a loaded 2-core machine its OpenMP
                # threads can spin against each other and a single thread is often faster.
                tries = ([int(t) for t in args.torch_threads.split(",")] if args.torch_threads
                         else sorted({1, args.threads}))
                for threads in tries:
                    run = torch_twin.train(arch, dump, width, rank, unfolds, epochs, batch, lr,
                                           min_lr, wd, clip, threads)
                    run["threads"] = threads
                    if py is None or (statistics.median(run["epoch_seconds"]) <
                                      statistics.median(py["epoch_seconds"])):
                        py = run
        cc_epoch = statistics.median(cc["epoch_seconds"])
        row = {"case": name, "parameters": cc["parameters"], "windows": windows, "batch": batch,
               "epochs": epochs, "cpp_epoch_s": cc_epoch, "cpp_loss": cc["final_loss"],
               "target_speedup": target}
        if py is not None:
            assert py["parameters"] == cc["parameters"]
            py_epoch = statistics.median(py["epoch_seconds"])
            row.update(torch_epoch_s=py_epoch, torch_loss=py["final_loss"],
                       torch_threads=py["threads"],
                       speedup=py_epoch / cc_epoch,
                       loss_diff=(cc["final_loss"] - py["final_loss"]) / py["final_loss"])
        results.append(row)
        print(json.dumps(row), flush=True)
    print()
    print(f"machine: {platform.node()} {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, {args.threads} threads each side; "
          f"date {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print()
    print("| model | params | windows x epochs, batch | C++ s/epoch | PyTorch s/epoch | speed-up "
          "(target) | C++ loss | PyTorch loss | loss diff |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if "torch_epoch_s" in r:
            print(f"| {r['case']} | {r['parameters']:,} | {r['windows']} x {r['epochs']}, "
                  f"{r['batch']} | {r['cpp_epoch_s']:.3f} | {r['torch_epoch_s']:.3f} "
                  f"({r['torch_threads']}t) | "
                  f"{r['speedup']:.1f}x (>= {r['target_speedup']:.0f}x) | {r['cpp_loss']:.5f} | "
                  f"{r['torch_loss']:.5f} | {100 * r['loss_diff']:+.1f} % |")
        else:
            print(f"| {r['case']} | {r['parameters']:,} | {r['windows']} x {r['epochs']}, "
                  f"{r['batch']} | {r['cpp_epoch_s']:.3f} | skipped | - | {r['cpp_loss']:.5f} "
                  f"| - | - |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    sys.path.insert(0, HERE)
    main()
