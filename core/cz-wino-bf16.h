/* cz-wino-bf16: Winograd F(2x2, 3x3) around a bfloat16 matrix product, for
 * the oneDNN backend's 3x3 stride-1 "same" convolutions (pad equal to the
 * dilation; dilated ones on the polyphase sub-grids, as in cz-ops).
 *
 * Y = A^T [(G g G^T) . (B^T d B)] A, the 16 products of a 4x4 input tile run
 * as 16 matrix products (tiles, cin) x (cin, cout): 4 multiplications of an
 * output 2x2 tile instead of 9 per channel pair.  F(2x2, 3x3) and not
 * F(4x4, 3x3): its transforms have only 0, +-1 and +-1/2, so rounding the
 * transformed input to bfloat16 loses no more than rounding the activations
 * does; F(4x4)'s 4s and 5s would amplify it.
 *
 * Activations are in oneDNN's nChw16c layout (blocks of 16 channels,
 * innermost), bfloat16; channel counts multiples of 16.  The transforms
 * compute in float32.  Every loop runs on n_threads OpenMP threads; the
 * result does not depend on their number. */
#ifndef CZ_WINO_BF16_H
#define CZ_WINO_BF16_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CZ_WINO2_POS 16         /* products of a 4x4 input tile */

/* Tiles of an h x w output at dilation d (each 2x2 on its sub-grid). */
int cz_wino2_tiles (int h, int w, int d);

/* The transformed weights u (16, cin, cout), float32, of w (cout, cin, 3,
 * 3). */
void cz_wino2_weights (const float *w, int cout, int cin, float *u);

/* Tiles are numbered row by row; a layer may run on them in chunks of
 * `stride` tiles, t0..t0+count-1 (count <= stride), to bound the memory of
 * v and m.  v (16, stride, c), its first count rows of each product = B^T
 * d B of those tiles of src (c, h, w) at dilation d, zero padded by d. */
void cz_wino2_input (const uint16_t * src, int c, int h, int w, int d,
    int t0, int count, int stride, uint16_t * v, int n_threads);

/* Those tiles of dst (c, h, w) = A^T m A from m (16, stride, c), its first
 * count rows of each product, plus bias, then max(0, x) if relu, then
 * x * scale + shift per channel (scale and shift may be NULL: none). */
void cz_wino2_output (const float *m, int c, int h, int w, int d, int t0,
    int count, int stride, const float *bias, int relu, const float *scale,
    const float *shift, uint16_t * dst, int n_threads);

/* bfloat16 <-> float32, rounding to nearest even (finite values). */
static inline uint16_t
cz_bf16 (float f)
{
  uint32_t u;
  memcpy (&u, &f, sizeof u);
  return (uint16_t) ((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static inline float
cz_bf16_float (uint16_t h)
{
  const uint32_t u = (uint32_t) h << 16;
  float f;
  memcpy (&f, &u, sizeof f);
  return f;
}

#endif
