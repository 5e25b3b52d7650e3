#!/usr/bin/env python3
"""Re-packs a bundle with Python's tarfile: once with the header fields cyclecast's writer sets
(docs/bundles.md, "Container"), then once per field set another way on one member.

Usage: foreign_tars.py BUNDLE MEMBER OUT_DIR. Writes OUT_DIR/<case>.tar for every case below;
tests/bundle/foreign_tar_test.cc runs `cyclecast bundle verify` on each, and
tests/fuzz/corpus/manifest_fuzz/bundle-*.tar were made with it from bundle-wrong-key.tar.
"""
import io
import sys
import tarfile


def set_attr(name, value):
    return lambda info: setattr(info, name, value)


def base256(offset, width, value_of):
    """A patch writing a number field in GNU tar's base-256 (a first byte of 0x80, then the value
    big-endian), which tar and tarfile read whatever the value, but ustar does not have."""
    def patch(header, info):
        header[offset:offset + width] = b"\x80" + value_of(info).to_bytes(width - 1, "big")
    return patch


def spaced_mode(header, info):
    header[100:108] = b"   644 \0"  # octal, but not as the writer spells it


# case -> (format, edit of the member's TarInfo, patch of its 512-byte header)

CASES = {
    "writer-settings": (tarfile.USTAR_FORMAT, None, None),
    "mode-4777": (tarfile.USTAR_FORMAT, set_attr("mode", 0o4777), None),
    "mode-spaced": (tarfile.USTAR_FORMAT, None, spaced_mode),
    "uid-1000": (tarfile.USTAR_FORMAT, set_attr("uid", 1000), None),
    "gid-1000": (tarfile.USTAR_FORMAT, set_attr("gid", 1000), None),
    "uname-root": (tarfile.USTAR_FORMAT, set_attr("uname", "root"), None),
    "gname-root": (tarfile.USTAR_FORMAT, set_attr("gname", "root"), None),
    "mtime-later": (tarfile.USTAR_FORMAT, lambda info: setattr(info, "mtime", info.mtime + 1),
                    None),
    "type-aregtype": (tarfile.USTAR_FORMAT, set_attr("type", tarfile.AREGTYPE), None),
    "uid-base256": (tarfile.USTAR_FORMAT, None, base256(108, 8, lambda info: 2**40)),
    "size-base256": (tarfile.USTAR_FORMAT, None, base256(124, 12, lambda info: info.size)),
    "pax-comment": (tarfile.PAX_FORMAT, set_attr("pax_headers", {"comment": "x"}), None),
    "pax-large-uid": (tarfile.PAX_FORMAT, set_attr("uid", 2**40), None),
    "gnu-format": (tarfile.GNU_FORMAT, None, None),
    "gnu-large-uid": (tarfile.GNU_FORMAT, set_attr("uid", 2**40), None),
}


def fix_checksum(header):
    header[148:156] = b"%06o\0 " % tarfile.calc_chksums(bytes(header))[0]


def repack(members, target, fmt, edit, patch):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for member, data in members:
            info = tarfile.TarInfo(member.name)
            info.size, info.mtime, info.mode = len(data), member.mtime, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if member.name == target and edit:
                edit(info)
            tar.addfile(info, io.BytesIO(data))
    raw = bytearray(out.getvalue())
    if patch:
        with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tar:
            info = tar.getmember(target)
        header = raw[info.offset:info.offset + 512]
        patch(header, info)
        fix_checksum(header)
        raw[info.offset:info.offset + 512] = header
    return bytes(raw)


def main():
    bundle, target, out_dir = sys.argv[1:4]
    with tarfile.open(bundle) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    if target not in [m.name for m, _ in members]:
        sys.exit(f"no member {target} in {bundle}")
    for case, (fmt, edit, patch) in CASES.items():
        with open(f"{out_dir}/{case}.tar", "wb") as f:
            f.write(repack(members, target, fmt, edit, patch))


if __name__ == "__main__":
    main()
