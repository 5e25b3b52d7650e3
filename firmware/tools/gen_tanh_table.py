#!/usr/bin/env python3
"""Prints the body of cc_tanh_q15_table (firmware/src/cc_tanh_table.c).

tanh on [0, 8] at 257 points, step 1/32, as Q15 rounded to nearest and capped at 32767 (tanh(8)
rounds to 32768, which int16 cannot hold). Re-run and paste if the table's size changes.
"""
import math

values = [min(32767, round(math.tanh(i / 32.0) * 32768.0)) for i in range(257)]
for start in range(0, len(values), 12):
    print("    " + ", ".join(str(v) for v in values[start:start + 12]) + ",")
