#include "cyclecast/cc_nn.h"

cc_status cc_fully_connected_s8(const int8_t* in, uint16_t in_size, int32_t input_offset,
                                const int8_t* weights, const int32_t* bias, uint16_t out_size,
                                int32_t multiplier, int32_t shift, int32_t output_offset,
                                int32_t act_min, int32_t act_max, int8_t* out) {
  uint16_t o;
  if (in == 0 || weights == 0 || out == 0 || in_size == 0 || out_size == 0) {
    return CC_ERROR_ARGUMENT;
  }
  if (input_offset < -127 || input_offset > 128 || output_offset < -128 || output_offset > 127 ||
      act_min > act_max || act_min < -128 || act_max > 127) {
    return CC_ERROR_ARGUMENT;
  }
  for (o = 0; o < out_size; ++o) {
    const int8_t* row = weights + (uint32_t)o * in_size;
    /* |acc| <= 65535 * 255 * 128 < 2^31: no overflow for any in_size a uint16_t allows. */
    int32_t acc = bias != 0 ? bias[o] : 0;
    int32_t q;
    uint16_t i;
    for (i = 0; i < in_size; ++i)
      acc += ((int32_t)in[i] + input_offset) * (int32_t)row[i];
    q = cc_requantize(acc, multiplier, shift) + output_offset;
    if (q < act_min) q = act_min;
    if (q > act_max) q = act_max;
    out[o] = (int8_t)q;
  }
  return CC_OK;
}
