#include "cz-ops.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <glib.h>
#include <omp.h>

/* ------------------------------------------------------------- GEMM --- */

/* Who owns the threads: the engine, never the BLAS library.  OpenBLAS's
 * thread count is process-wide, its OpenMP build is not made for concurrent
 * threaded calls from several application threads (two elements gave wrong
 * pixels), and its threaded GEMMs wait on each other in sched_yield loops
 * that collapse under CPU contention (one busy process beside a 1-thread
 * element: 744 ms a frame instead of 28).  So every GEMM here is cut into
 * independent column blocks, each computed by a single-threaded OpenBLAS
 * call on one of the caller's own OpenMP threads.  OpenBLAS's OpenMP build
 * sizes its team from the calling task's omp_get_max_threads(): each task of
 * the region below sets that to 1 for itself (the setting ends with the
 * region), so OpenBLAS runs single-threaded, touches no process-wide thread
 * count and allocates its buffers thread-safely. */
/* Width of the column blocks of a GEMM with n columns: a function of n
 * alone, so that the blocks -- and the result, bit for bit -- are the same
 * whatever the thread count; 6 to ~40 blocks for the network's layers, enough
 * to share out, wide enough for the BLAS kernels. */
static int
gemm_block_width (int n)
{
  int w = (n / 8 + 15) / 16 * 16;
  return CLAMP (w, 96, 1024);
}

void
cz_gemm_batch (const CzGemm * g, int batch, int n_threads)
{
  const int bw = gemm_block_width (g->n);
  const int blocks = (g->n + bw - 1) / bw, jobs = batch * blocks;
  const CBLAS_TRANSPOSE ta = g->trans_a ? CblasTrans : CblasNoTrans;
#pragma omp parallel num_threads(n_threads)
  {
    omp_set_num_threads (1);
#pragma omp for schedule(dynamic, 1)
    for (int job = 0; job < jobs; job++) {
      const int i = job / blocks, j0 = (job % blocks) * bw;
      const int cols = MIN (bw, g->n - j0);
      cblas_sgemm (CblasRowMajor, ta, CblasNoTrans, g->m, cols, g->k, 1.0f,
          g->a + i * g->stride_a, g->lda, g->b + i * g->stride_b + j0, g->ldb,
          0.0f, g->c + i * g->stride_c + j0, g->ldc);
    }
  }
}

size_t
cz_conv2d_scratch (const CzConv * c, int h, int w)
{
  int ho = cz_conv_out_size (h, c->k, c->stride, c->pad, c->dil);
  int wo = cz_conv_out_size (w, c->k, c->stride, c->pad, c->dil);
  if (c->k == 1 && c->stride == 1 && c->pad == 0)
    return 0;
  return (size_t) c->cin * c->k * c->k * ho * wo;
}

/* col (cin*k*k, ho*wo): row r = (ci, ky, kx) holds the input sample under
 * tap (ky, kx) for every output position, 0 outside the image. */
static void
im2col (const CzConv * c, const float *in, int h, int w, int ho, int wo,
    float *col, int n_threads)
{
  const int k = c->k, rows = c->cin * k * k;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int r = 0; r < rows; r++) {
    const int ci = r / (k * k), ky = (r / k) % k, kx = r % k;
    const float *src = in + (size_t) ci * h * w;
    float *dst = col + (size_t) r * ho * wo;
    for (int oy = 0; oy < ho; oy++) {
      const int iy = oy * c->stride - c->pad + ky * c->dil;
      float *d = dst + (size_t) oy * wo;
      if (iy < 0 || iy >= h) {
        memset (d, 0, sizeof (float) * wo);
        continue;
      }
      const float *s = src + (size_t) iy * w;
      for (int ox = 0; ox < wo; ox++) {
        const int ix = ox * c->stride - c->pad + kx * c->dil;
        d[ox] = (ix >= 0 && ix < w) ? s[ix] : 0.0f;
      }
    }
  }
}

static void
bias_relu (float *out, int c, int n, const float *bias, int relu, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int ch = 0; ch < c; ch++) {
    float *o = out + (size_t) ch * n;
    const float b = bias ? bias[ch] : 0.0f;
    if (relu) {
      for (int i = 0; i < n; i++) {
        float v = o[i] + b;
        o[i] = v > 0.0f ? v : 0.0f;
      }
    } else {
      for (int i = 0; i < n; i++)
        o[i] += b;
    }
  }
}

void
cz_conv2d (const CzConv * c, const float *in, int h, int w, float *out,
    float *scratch, int relu, int n_threads)
{
  const int ho = cz_conv_out_size (h, c->k, c->stride, c->pad, c->dil);
  const int wo = cz_conv_out_size (w, c->k, c->stride, c->pad, c->dil);
  const int kk = c->cin * c->k * c->k, n = ho * wo;
  const float *col = in;

  if (cz_conv2d_scratch (c, h, w) > 0) {
    im2col (c, in, h, w, ho, wo, scratch, n_threads);
    col = scratch;
  }
  /* out (cout, n) = weight (cout, kk) x col (kk, n) */
  const CzGemm g = {.m = c->cout,.n = n,.k = kk,.a = c->weight,.lda = kk,
    .b = col,.ldb = n,.c = out,.ldc = n
  };
  cz_gemm_batch (&g, 1, n_threads);
  bias_relu (out, c->cout, n, c->bias, relu, n_threads);
}

size_t
cz_deconv2d_scratch (const CzConv * c, int h, int w)
{
  return (size_t) c->cout * c->k * c->k * h * w;
}

void
cz_deconv2d (const CzConv * c, const float *in, int h, int w, float *out,
    float *scratch, int relu, int n_threads)
{
  const int k = c->k, s = c->stride, p = c->pad;
  const int ho = (h - 1) * s - 2 * p + k, wo = (w - 1) * s - 2 * p + k;
  const int rows = c->cout * k * k, n = h * w;

  /* cols (cout*k*k, h*w) = weight^T (cout*k*k, cin) x in (cin, h*w) */
  const CzGemm g = {.trans_a = 1,.m = rows,.n = n,.k = c->cin,
    .a = c->weight,.lda = rows,.b = in,.ldb = n,.c = scratch,.ldc = n
  };
  cz_gemm_batch (&g, 1, n_threads);

  /* col2im: every input pixel scatters a k x k patch; one thread per output
   * channel, so no two threads touch the same output. */
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int co = 0; co < c->cout; co++) {
    float *o = out + (size_t) co * ho * wo;
    memset (o, 0, sizeof (float) * ho * wo);
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        const float *src = scratch + ((size_t) (co * k + ky) * k + kx) * n;
        for (int iy = 0; iy < h; iy++) {
          const int oy = iy * s - p + ky;
          if (oy < 0 || oy >= ho)
            continue;
          for (int ix = 0; ix < w; ix++) {
            const int ox = ix * s - p + kx;
            if (ox >= 0 && ox < wo)
              o[(size_t) oy * wo + ox] += src[(size_t) iy * w + ix];
          }
        }
      }
  }
  bias_relu (out, c->cout, ho * wo, c->bias, relu, n_threads);
}

void
cz_channel_affine (float *x, int c, int n, const float *scale,
    const float *shift, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int ch = 0; ch < c; ch++) {
    float *v = x + (size_t) ch * n;
    for (int i = 0; i < n; i++)
      v[i] = v[i] * scale[ch] + shift[ch];
  }
}

/* The channel-axis loops run over blocks of PIX pixels: every inner loop
 * is then over contiguous floats of one channel, which vectorises, while
 * the block's running maxima and sums stay in registers or L1. */
#define PIX 64

/* m[j] = max over the c channels of x at pixel j of the block. */
static inline void
block_max (const float *x, int c, size_t n, int len, float *m)
{
  for (int j = 0; j < len; j++)
    m[j] = x[j];
  for (int k = 1; k < c; k++) {
    const float *row = x + (size_t) k * n;
    for (int j = 0; j < len; j++)
      m[j] = row[j] > m[j] ? row[j] : m[j];
  }
}

CZ_VECTOR_CLONES void
cz_softmax_channels (float *x, int c, int n, float temperature, int n_threads)
{
  const float inv_t = 1.0f / temperature;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int j0 = 0; j0 < n; j0 += PIX) {
    const int len = n - j0 < PIX ? n - j0 : PIX;
    float m[PIX], sum[PIX];
    block_max (x + j0, c, n, len, m);
    for (int j = 0; j < len; j++)
      sum[j] = 0.0f;
    for (int k = 0; k < c; k++) {
      float *row = x + (size_t) k * n + j0;
      for (int j = 0; j < len; j++) {
        row[j] = cz_exp ((row[j] - m[j]) * inv_t);
        sum[j] += row[j];
      }
    }
    for (int j = 0; j < len; j++)
      sum[j] = 1.0f / sum[j];
    for (int k = 0; k < c; k++) {
      float *row = x + (size_t) k * n + j0;
      for (int j = 0; j < len; j++)
        row[j] *= sum[j];
    }
  }
}

CZ_VECTOR_CLONES void
cz_annealed_mean (const float *x, int c, int n, float temperature,
    const float (*bins)[2], float gain, float *ab, int n_threads)
{
  const float inv_t = 1.0f / temperature;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int j0 = 0; j0 < n; j0 += PIX) {
    const int len = n - j0 < PIX ? n - j0 : PIX;
    float m[PIX], s[PIX], sa[PIX], sb[PIX];
    block_max (x + j0, c, n, len, m);
    for (int j = 0; j < len; j++)
      s[j] = sa[j] = sb[j] = 0.0f;
    for (int k = 0; k < c; k++) {
      const float *row = x + (size_t) k * n + j0;
      const float ba = bins[k][0], bb = bins[k][1];
      for (int j = 0; j < len; j++) {
        const float e = cz_exp ((row[j] - m[j]) * inv_t);
        s[j] += e;
        sa[j] += e * ba;
        sb[j] += e * bb;
      }
    }
    for (int j = 0; j < len; j++) {
      ab[j0 + j] = gain * sa[j] / s[j];
      ab[(size_t) n + j0 + j] = gain * sb[j] / s[j];
    }
  }
}

CZ_VECTOR_CLONES void
cz_log_array (float *x, size_t n, int n_threads)
{
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (size_t i = 0; i < n; i++)
    x[i] = cz_log (x[i] > 1e-30f ? x[i] : 1e-30f);
}

CzResampler *
cz_resampler_new (int in, int out)
{
  assert (in > 0 && out > 0);
  const double scale = (double) in / out;
  const double support = scale > 1.0 ? scale : 1.0;
  const int taps = (int) ceil (support) * 2 + 1;
  CzResampler *r = calloc (1, sizeof *r);
  if (!r)
    return NULL;
  r->in = in;
  r->out = out;
  r->taps = taps;
  r->first = calloc (out, sizeof (int));
  r->weight = calloc ((size_t) out * taps, sizeof (float));
  if (!r->first || !r->weight) {
    cz_resampler_free (r);
    return NULL;
  }
  for (int o = 0; o < out; o++) {
    const double centre = (o + 0.5) * scale;
    int lo = (int) floor (centre - support + 0.5);
    if (lo < 0)
      lo = 0;
    if (lo > in - 1)
      lo = in - 1;
    double total = 0.0;
    float *w = r->weight + (size_t) o * taps;
    for (int t = 0; t < taps; t++) {
      const int i = lo + t;
      if (i >= in)
        break;
      double d = fabs ((i + 0.5 - centre) / support);
      w[t] = d < 1.0 ? (float) (1.0 - d) : 0.0f;
      total += w[t];
    }
    if (total <= 0.0) {         /* a single tap at the edge: take the nearest */
      memset (w, 0, sizeof (float) * taps);
      lo = (int) fmin (fmax (floor (centre), 0), in - 1);
      w[0] = 1.0f;
      total = 1.0;
    }
    for (int t = 0; t < taps; t++)
      w[t] = (float) (w[t] / total);
    r->first[o] = lo;
  }
  return r;
}

void
cz_resampler_free (CzResampler * r)
{
  if (!r)
    return;
  free (r->first);
  free (r->weight);
  free (r);
}

/* Taps of output o that fall inside the input. */
static inline int
resample_taps (const CzResampler * r, int o)
{
  const int lo = r->first[o];
  return r->in - lo < r->taps ? r->in - lo : r->taps;
}

CZ_VECTOR_CLONES void
cz_resample (const CzResampler * rx, const CzResampler * ry, int planes,
    const float *in, float *out, float *tmp, int n_threads)
{
  const int wi = rx->in, wo = rx->out, hi = ry->in, ho = ry->out;
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int row = 0; row < planes * hi; row++) {
    const float *s = in + (size_t) row * wi;
    float *d = tmp + (size_t) row * wo;
    for (int x = 0; x < wo; x++) {
      const float *w = rx->weight + (size_t) x * rx->taps;
      const float *src = s + rx->first[x];
      const int n = resample_taps (rx, x);
      float acc = 0.0f;
      for (int t = 0; t < n; t++)
        acc += w[t] * src[t];
      d[x] = acc;
    }
  }
  /* vertically: each output row a weighted sum of whole input rows */
#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int row = 0; row < planes * ho; row++) {
    const int p = row / ho, y = row % ho;
    const float *s = tmp + ((size_t) p * hi + ry->first[y]) * wo;
    const float *w = ry->weight + (size_t) y * ry->taps;
    const int n = resample_taps (ry, y);
    float *d = out + (size_t) row * wo;
    for (int x = 0; x < wo; x++)
      d[x] = w[0] * s[x];
    for (int t = 1; t < n; t++) {
      const float *sr = s + (size_t) t * wo;
      const float wt = w[t];
      for (int x = 0; x < wo; x++)
        d[x] += wt * sr[x];
    }
  }
}

/* ---------------------------------------------------------- Winograd --- */

#define WM 4                    /* output tile */
#define WT 6                    /* input tile: WM + 3 - 1 */

/* Lavin & Gray (2016), F(4, 3): Y = A^T [(G g G^T) . (B^T d B)] A with
 *
 *   B^T = | 4  0 -5  0  1  0 |   G = |  1/4     0     0  |   A^T = | 1 1  1 1  1 0 |
 *         | 0 -4 -4  1  1  0 |       | -1/6  -1/6  -1/6  |         | 0 1 -1 2 -2 0 |
 *         | 0  4 -4 -1  1  0 |       | -1/6   1/6  -1/6  |         | 0 1  1 4  4 0 |
 *         | 0 -2 -1  2  1  0 |       | 1/24  1/12   1/6  |         | 0 1 -1 8 -8 1 |
 *         | 0  2 -1 -2  1  0 |       | 1/24 -1/12   1/6  |
 *         | 0  4  0 -5  0  1 |       |    0     0     1  |
 *
 * B^T and A^T are applied by bt6() and at6() below, zeros skipped. */
static const float G[WT][3] = {
  {1.0f / 4, 0, 0},
  {-1.0f / 6, -1.0f / 6, -1.0f / 6},
  {-1.0f / 6, 1.0f / 6, -1.0f / 6},
  {1.0f / 24, 1.0f / 12, 1.0f / 6},
  {1.0f / 24, -1.0f / 12, 1.0f / 6},
  {0, 0, 1},
};


/* B^T x for one 6-vector, with the zeros of B^T skipped */
static inline void
bt6 (const float *x, float *r)
{
  r[0] = 4.0f * x[0] - 5.0f * x[2] + x[4];
  r[1] = -4.0f * (x[1] + x[2]) + x[3] + x[4];
  r[2] = 4.0f * (x[1] - x[2]) - x[3] + x[4];
  r[3] = -2.0f * (x[1] - x[3]) - x[2] + x[4];
  r[4] = 2.0f * (x[1] - x[3]) - x[2] + x[4];
  r[5] = 4.0f * x[1] - 5.0f * x[3] + x[5];
}

/* A^T x for one 6-vector */
static inline void
at6 (const float *x, float *r)
{
  const float s12 = x[1] + x[2], d12 = x[1] - x[2];
  const float s34 = x[3] + x[4], d34 = x[3] - x[4];
  r[0] = x[0] + s12 + s34;
  r[1] = d12 + 2.0f * d34;
  r[2] = s12 + 4.0f * s34;
  r[3] = d12 + 8.0f * d34 + x[5];
}

int
cz_winograd_disabled (void)
{
  const char *v = getenv ("CZ_WINOGRAD");
  return v && !strcmp (v, "0");
}

int
cz_winograd_applies (const CzConv * c)
{
  /* with a single input channel the GEMMs are too thin to pay */
  return c->k == 3 && c->stride == 1 && c->pad == c->dil && c->cin >= 8;
}

float *
cz_winograd_weights (const CzConv * c)
{
  float *u = malloc (sizeof (float) * WT * WT * c->cout * c->cin);
  if (!u)
    return NULL;
  for (int co = 0; co < c->cout; co++)
    for (int ci = 0; ci < c->cin; ci++) {
      const float *g = c->weight + ((size_t) co * c->cin + ci) * 9;
      float tmp[WT][3];         /* G g */
      for (int i = 0; i < WT; i++)
        for (int j = 0; j < 3; j++)
          tmp[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
      for (int i = 0; i < WT; i++)
        for (int j = 0; j < WT; j++)    /* (G g) G^T */
          u[((size_t) (i * WT + j) * c->cout + co) * c->cin + ci] =
              tmp[i][0] * G[j][0] + tmp[i][1] * G[j][1] + tmp[i][2] * G[j][2];
    }
  return u;
}

int
cz_axis_tiles (int n, int d, int m)
{
  int t = 0;
  for (int p = 0; p < d && p < n; p++)
    t += ((n - p + d - 1) / d + m - 1) / m;
  return t;
}

void
cz_axis_tile (int t, int n, int d, int m, int *origin, int *valid)
{
  for (int p = 0; p < d; p++) {
    const int count = (n - p + d - 1) / d, tiles = (count + m - 1) / m;
    if (t < tiles) {
      *origin = p + d * m * t;
      *valid = count - m * t < m ? count - m * t : m;
      return;
    }
    t -= tiles;
  }
  assert (!"tile out of range");
}

size_t
cz_winograd_scratch (const CzConv * c, int h, int w)
{
  const size_t ty = cz_axis_tiles (h, c->dil, WM);
  const size_t tiles = ty * cz_axis_tiles (w, c->dil, WM);
  return (size_t) WT *WT * tiles * (c->cin + c->cout);
}

void
cz_conv2d_winograd (const CzConv * c, const float *u, const float *in, int h,
    int w, float *out, float *scratch, int relu, int n_threads)
{
  const int d = c->dil, ty = cz_axis_tiles (h, d, WM),
      tx = cz_axis_tiles (w, d, WM);
  const int tiles = ty * tx;
  float *v = scratch;           /* (36, cin, tiles) */
  float *m = scratch + (size_t) WT * WT * c->cin * tiles;       /* (36, cout, tiles) */

#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int job = 0; job < c->cin * ty; job++) {
    const int ci = job / ty, tyi = job % ty;
    int y0, vy;
    cz_axis_tile (tyi, h, d, WM, &y0, &vy);
    const float *src = in + (size_t) ci * h * w;
    for (int txi = 0; txi < tx; txi++) {
      int x0, vx;
      cz_axis_tile (txi, w, d, WM, &x0, &vx);
      float p[WT][WT], t[WT][WT];
      for (int r = 0; r < WT; r++) {
        const int iy = y0 - c->pad + d * r;
        for (int s = 0; s < WT; s++) {
          const int ix = x0 - c->pad + d * s;
          p[r][s] = (iy >= 0 && iy < h && ix >= 0 && ix < w) ?
              src[(size_t) iy * w + ix] : 0.0f;
        }
      }
      for (int j = 0; j < WT; j++) {    /* t = B^T p, column by column */
        float col[WT], r[WT];
        for (int k = 0; k < WT; k++)
          col[k] = p[k][j];
        bt6 (col, r);
        for (int k = 0; k < WT; k++)
          t[k][j] = r[k];
      }
      const size_t tile = (size_t) tyi * tx + txi;
      float *dst = v + (size_t) ci * tiles + tile;
      const size_t step = (size_t) c->cin * tiles;
      for (int i = 0; i < WT; i++) {    /* (B^T p) B, row by row */
        float r[WT];
        bt6 (t[i], r);
        for (int j = 0; j < WT; j++)
          dst[(i * WT + j) * step] = r[j];
      }
    }
  }

  /* m[k] (cout, tiles) = u[k] (cout, cin) x v[k] (cin, tiles), k < 36 */
  const CzGemm g = {.m = c->cout,.n = tiles,.k = c->cin,.a = u,.lda = c->cin,
    .stride_a = (size_t) c->cout * c->cin,.b = v,.ldb = tiles,
    .stride_b = (size_t) c->cin * tiles,.c = m,.ldc = tiles,
    .stride_c = (size_t) c->cout * tiles
  };
  cz_gemm_batch (&g, WT * WT, n_threads);

#pragma omp parallel for num_threads(n_threads) schedule(static)
  for (int job = 0; job < c->cout * ty; job++) {
    const int co = job / ty, tyi = job % ty;
    int y0, vy;
    cz_axis_tile (tyi, h, d, WM, &y0, &vy);
    float *dst = out + (size_t) co * h * w;
    const float b = c->bias ? c->bias[co] : 0.0f;
    for (int txi = 0; txi < tx; txi++) {
      int x0, vx;
      cz_axis_tile (txi, w, d, WM, &x0, &vx);
      const size_t tile = (size_t) tyi * tx + txi;
      float q[WT][WT], t[WM][WT];
      for (int i = 0; i < WT; i++)
        for (int j = 0; j < WT; j++)
          q[i][j] = m[((size_t) (i * WT + j) * c->cout + co) * tiles + tile];
      for (int j = 0; j < WT; j++) {    /* A^T q, column by column */
        float col[WT], r[WM];
        for (int k = 0; k < WT; k++)
          col[k] = q[k][j];
        at6 (col, r);
        for (int k = 0; k < WM; k++)
          t[k][j] = r[k];
      }
      for (int i = 0; i < vy; i++) {    /* (A^T q) A, row by row */
        float r[WM];
        at6 (t[i], r);
        float *row = dst + (size_t) (y0 + d * i) * w + x0;
        for (int j = 0; j < vx; j++) {
          const float val = r[j] + b;
          row[d * j] = relu && val < 0.0f ? 0.0f : val;
        }
      }
    }
  }
}
