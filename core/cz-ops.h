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

/* Softmax over the channel axis of x (c, n), in place, of x / temperature. */
void cz_softmax_channels (float *x, int c, int n, float temperature,
    int n_threads);

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
