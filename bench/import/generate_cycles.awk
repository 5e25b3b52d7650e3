# Writes `rows` rows of cyclecast per-cycle CSV (docs/csv-format.md) for the import benchmark,
# used when the `cyclecast simulate` command is not available. Deterministic: no random source,
# so every run imports the same bytes. Cells of 1.1 Ah rated capacity fade linearly with a
# small periodic ripple, 1000 cycles per cell.
#   awk -v rows=1000000 -f bench/import/generate_cycles.awk > cycles.csv
BEGIN {
  if (rows == "") rows = 1000000
  cycles_per_cell = 1000
  print "cell_id,batch,cycle,qd_ah,qc_ah,ir_ohm,tmax_c,tavg_c,tmin_c,chargetime_min"
  for (i = 0; i < rows; i++) {
    cell = int(i / cycles_per_cell)
    cycle = i % cycles_per_cell + 1
    ripple = sin(i * 0.37) * 0.002
    qd = 1.08 - 0.00025 * cycle + ripple
    printf "gen%d,bench,%d,%.7f,%.7f,%.9f,%.6f,%.6f,%.6f,%.6f\n", cell, cycle, qd, qd + 0.0004,
           0.0165 + 0.000002 * cycle, 33.5 + ripple * 100, 31.2 + ripple * 50, 29.0, 10.2 + ripple
  }
}
