#include "cyclecast/cc_nn.h"

int32_t cc_requantize(int32_t value, int32_t multiplier, int32_t shift) {
  int64_t product;
  int32_t right_shift;
  int64_t rounded;
  if (multiplier < 0 || shift < -31 || shift > 30) return 0;
  product = (int64_t)value * (int64_t)multiplier;
  right_shift = 31 - shift; /* in [1, 62] */
  /* Adding half of the divisor before an arithmetic shift rounds ties towards +infinity. */
  rounded = (product + ((int64_t)1 << (right_shift - 1))) >> right_shift;
  if (rounded > INT32_MAX) return INT32_MAX;
  if (rounded < INT32_MIN) return INT32_MIN;
  return (int32_t)rounded;
}
