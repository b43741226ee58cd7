/* cz-ops: the tensor operations of the network, on contiguous float32 CHW
 * tensors of batch 1.
 *
 * Parallelism: every loop, the GEMMs included, runs on `n_threads` OpenMP
 * threads of the caller's (cz_gemm_batch); the BLAS library never starts
 * threads of its own.  Results do not depend on n_threads. */
#ifndef CZ_OPS_H
#define CZ_OPS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A 2-D convolution: weight (cout, cin, k, k), bias (cout). */
typedef struct {
  int cin, cout, k, stride, pad, dil;
  const float *weight;
  const float *bias;
} CzConv;

/* Output size of a convolution along one axis. */
static inline int
cz_conv_out_size (int in, int k, int stride, int pad, int dil)
{
  return (in + 2 * pad - dil * (k - 1) - 1) / stride + 1;
}

/* Floats of scratch that cz_conv2d needs for an input of h x w. */
size_t cz_conv2d_scratch (const CzConv *c, int h, int w);

/* out (cout, ho, wo) = conv(in (cin, h, w)); scratch as sized above.
 * relu: apply max(0, x) to the result. */
void cz_conv2d (const CzConv *c, const float *in, int h, int w, float *out,
    float *scratch, int relu, int n_threads);

/* Winograd F(4x4, 3x3) for 3x3 stride-1 "same" convolutions (pad equal to
 * the dilation; dilated ones run on the polyphase sub-grids): 36 GEMMs of
 * (cout, cin) x (cin, tiles) instead of one of (cout, 9 cin) x (cin, h*w),
 * a quarter of the multiplications. */
int cz_winograd_applies (const CzConv * c);

/* Winograd tiles along one axis of n outputs at dilation d, m outputs a
 * tile: each phase p < d holds the outputs p, p + d, p + 2d, ...; tile t
 * starts at *origin and has *valid (<= m) of its outputs inside. */
int cz_axis_tiles (int n, int d, int m);
void cz_axis_tile (int t, int n, int d, int m, int *origin, int *valid);

/* Whether the environment turns Winograd off (CZ_WINOGRAD=0): every 3x3
 * layer then runs as a direct convolution, in both backends -- for
 * comparisons; the output moves by rounding only. */
int cz_winograd_disabled (void);

/* The transformed weights (36, cout, cin); free with free(). */
float *cz_winograd_weights (const CzConv * c);

size_t cz_winograd_scratch (const CzConv * c, int h, int w);
void cz_conv2d_winograd (const CzConv * c, const float *u, const float *in,
    int h, int w, float *out, float *scratch, int relu, int n_threads);

/* A transposed convolution: weight (cin, cout, k, k) as PyTorch stores it,
 * bias (cout). Output (cout, (h-1)*stride - 2*pad + k, ...). */
size_t cz_deconv2d_scratch (const CzConv *c, int h, int w);
void cz_deconv2d (const CzConv *c, const float *in, int h, int w, float *out,
    float *scratch, int relu, int n_threads);

/* x[c] = x[c] * scale[c] + shift[c] over (c, n) -- batch norm at inference. */
void cz_channel_affine (float *x, int c, int n, const float *scale,
    const float *shift, int n_threads);

/* The per-pixel loops below are compiled for AVX-512, AVX2 and plain
 * x86-64, the one to run picked at load time from the CPU's features. */
#if defined(__GNUC__) && defined(__x86_64__)
#define CZ_VECTOR_CLONES __attribute__ ((target_clones ("avx512f", "avx2", \
            "default")))
#else
#define CZ_VECTOR_CLONES
#endif

/* exp(x) for x in [-87, 88] (clamped beyond), relative error below 3e-7
 * (tests/test-core.c); written so that loops over it vectorise. */
static inline float
cz_exp (float x)
{
  x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
  const float shifter = 12582912.0f;    /* 1.5 * 2^23: adding it rounds */
  const float n = (x * 1.44269504088896341f + shifter) - shifter;
  /* x = n ln2 + r, |r| <= ln2 / 2; ln2 in two parts (Cody & Waite) so
   * that n * ln2_hi is exact */
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  /* e^r, Taylor to r^7: truncation below 6e-9 */
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const uint32_t bits = (uint32_t) ((int32_t) n + 127) << 23;
  float scale;
  memcpy (&scale, &bits, sizeof scale);
  return p * scale;
}

/* ln(x) for normal x > 0, error below 1e-6 + 1.2e-7 |ln x| (the float
 * result's own rounding); vectorises. */
static inline float
cz_log (float x)
{
  uint32_t bits;
  memcpy (&bits, &x, sizeof bits);
  int32_t e = (int32_t) ((bits >> 23) & 0xff) - 127;
  const uint32_t mbits = (bits & 0x7fffffu) | 0x3f800000u;
  float m;
  memcpy (&m, &mbits, sizeof m);        /* x = m 2^e, m in [1, 2) */
  const int big = m > 1.41421356f;
  m = big ? 0.5f * m : m;       /* m in [sqrt(1/2), sqrt(2)) */
  e += big;
  /* ln m = 2 atanh(y), y = (m - 1) / (m + 1), |y| < 0.172: to y^9 */
  const float y = (m - 1.0f) / (m + 1.0f), y2 = y * y;
  const float s = y * (2.0f + y2 * (2.0f / 3 + y2 * (2.0f / 5 + y2 * (2.0f / 7
                  + y2 * (2.0f / 9)))));
  const float ef = (float) e;
  return ef * 0.69314718055994531f + s;
}

/* Softmax over the channel axis of x (c, n), in place, of x / temperature. */
void cz_softmax_channels (float *x, int c, int n, float temperature,
    int n_threads);

/* The annealed mean of Zhang et al.: ab (2, n) = gain * sum_k w_k bins[k]
 * with w = softmax(x / temperature) over the c channels of x (c, n) --
 * logits, or log-probabilities.  Fused: the probabilities are never
 * stored. */
void cz_annealed_mean (const float *x, int c, int n, float temperature,
    const float (*bins)[2], float gain, float *ab, int n_threads);

/* x[i] = ln(max(x[i], 1e-30)) over n values. */
void cz_log_array (float *x, size_t n, int n_threads);

/* A separable resampler from `in` samples to `out` samples along one axis,
 * with pixel centres aligned (align_corners = false).  Downscaling uses a
 * triangle filter widened by the scale factor (antialiased, like PyTorch's
 * bilinear with antialias=True); upscaling is plain bilinear. */
typedef struct {
  int in, out, taps;
  int *first;                   /* (out) first input index of each output */
  float *weight;                /* (out, taps) */
} CzResampler;

/* NULL when out of memory. */
CzResampler *cz_resampler_new (int in, int out);
void cz_resampler_free (CzResampler *r);

/* Resample `planes` planes (planes, h_in, w_in) -> (planes, h_out, w_out);
 * tmp holds planes * h_in * w_out floats. */
void cz_resample (const CzResampler *rx, const CzResampler *ry, int planes,
    const float *in, float *out, float *tmp, int n_threads);

/* A batch of GEMMs  c[i] (m, n) = op(a[i]) (m, k) x b[i] (k, n),  row-major,
 * op = transpose when trans_a; matrix i starts stride_* floats after
 * matrix 0. */
typedef struct {
  int trans_a, m, n, k;
  const float *a;
  int lda;
  size_t stride_a;
  const float *b;
  int ldb;
  size_t stride_b;
  float *c;
  int ldc;
  size_t stride_c;
} CzGemm;

/* Runs `batch` GEMMs on n_threads threads of the caller's own; the result
 * does not depend on n_threads.  Safe to call from any number of threads at
 * once. */
void cz_gemm_batch (const CzGemm * g, int batch, int n_threads);

#endif
