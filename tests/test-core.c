/* Unit tests of core/: the network's operations against naive reference
 * implementations over sweeps of sizes, strides, paddings and dilations
 * (odd sizes, fixed seed), CIELAB against known values, the gamut table
 * against models/pts_in_hull.csv. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "cz-color.h"
#include "cz-colorizer.h"
#include "cz-ops.h"
#include "cz-wino-bf16.h"

static float *
random_floats (GRand * rng, size_t n)
{
  float *v = g_new (float, n ? n : 1);
  for (size_t i = 0; i < n; i++)
    v[i] = (float) g_rand_double_range (rng, -1.0, 1.0);
  return v;
}

static void
naive_conv (const CzConv * c, const float *in, int h, int w, float *out,
    int relu)
{
  const int ho = cz_conv_out_size (h, c->k, c->stride, c->pad, c->dil);
  const int wo = cz_conv_out_size (w, c->k, c->stride, c->pad, c->dil);
  for (int co = 0; co < c->cout; co++)
    for (int oy = 0; oy < ho; oy++)
      for (int ox = 0; ox < wo; ox++) {
        double acc = c->bias[co];
        for (int ci = 0; ci < c->cin; ci++)
          for (int ky = 0; ky < c->k; ky++)
            for (int kx = 0; kx < c->k; kx++) {
              int iy = oy * c->stride - c->pad + ky * c->dil;
              int ix = ox * c->stride - c->pad + kx * c->dil;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                continue;
              acc += (double) c->weight[((co * c->cin + ci) * c->k + ky)
                  * c->k + kx] * in[(ci * h + iy) * w + ix];
            }
        out[(co * ho + oy) * wo + ox] = relu && acc < 0 ? 0.0f : (float) acc;
      }
}

static void
naive_deconv (const CzConv * c, const float *in, int h, int w, float *out)
{
  const int ho = (h - 1) * c->stride - 2 * c->pad + c->k;
  const int wo = (w - 1) * c->stride - 2 * c->pad + c->k;
  for (int co = 0; co < c->cout; co++)
    for (int i = 0; i < ho * wo; i++)
      out[co * ho * wo + i] = c->bias[co];
  for (int ci = 0; ci < c->cin; ci++)
    for (int iy = 0; iy < h; iy++)
      for (int ix = 0; ix < w; ix++)
        for (int co = 0; co < c->cout; co++)
          for (int ky = 0; ky < c->k; ky++)
            for (int kx = 0; kx < c->k; kx++) {
              int oy = iy * c->stride - c->pad + ky;
              int ox = ix * c->stride - c->pad + kx;
              if (oy < 0 || oy >= ho || ox < 0 || ox >= wo)
                continue;
              out[(co * ho + oy) * wo + ox] += c->weight[((ci * c->cout + co)
                      * c->k + ky) * c->k + kx] * in[(ci * h + iy) * w + ix];
            }
}

static double
max_abs_diff (const float *a, const float *b, size_t n)
{
  double m = 0.0;
  for (size_t i = 0; i < n; i++)
    m = fmax (m, fabs ((double) a[i] - b[i]));
  return m;
}

/* cz_gemm_batch against a naive product, transposed or not, with column
 * counts around the block widths; the result is the same bit for bit for
 * every thread count. */
static void
test_gemm_batch (void)
{
  GRand *rng = g_rand_new_with_seed (7);
  static const int ns[] = { 1, 63, 64, 65, 336, 1037, 5000 };
  for (guint t = 0; t < G_N_ELEMENTS (ns); t++)
    for (int trans = 0; trans < 2; trans++) {
      const int m = 19, k = 23, n = ns[t], batch = 3;
      float *a = random_floats (rng, (size_t) batch * m * k);
      float *b = random_floats (rng, (size_t) batch * k * n);
      float *c[3];
      for (int nt = 1; nt <= 3; nt++) {
        c[nt - 1] = g_new (float, (size_t) batch * m * n);
        const CzGemm g = {.trans_a = trans,.m = m,.n = n,.k = k,.a = a,
          .lda = trans ? m : k,.stride_a = (size_t) m * k,.b = b,.ldb = n,
          .stride_b = (size_t) k * n,.c = c[nt - 1],.ldc = n,
          .stride_c = (size_t) m * n
        };
        cz_gemm_batch (&g, batch, nt);
      }
      double worst = 0.0;
      for (int i = 0; i < batch; i++)
        for (int r = 0; r < m; r++)
          for (int col = 0; col < n; col++) {
            double acc = 0.0;
            for (int q = 0; q < k; q++) {
              const float av = trans ? a[(size_t) i * m * k + q * m + r]
                  : a[(size_t) i * m * k + r * k + q];
              acc += av * b[(size_t) i * k * n + (size_t) q * n + col];
            }
            worst = fmax (worst, fabs (acc - c[0][(size_t) i * m * n
                        + (size_t) r * n + col]));
          }
      if (worst > 1e-4)
        g_error ("gemm n=%d trans=%d: max error %g", n, trans, worst);
      for (int nt = 2; nt <= 3; nt++)
        if (memcmp (c[0], c[nt - 1], sizeof (float) * batch * m * n))
          g_error ("gemm n=%d trans=%d: %d threads differ from 1", n, trans,
              nt);
      for (int i = 0; i < 3; i++)
        g_free (c[i]);
      g_free (a);
      g_free (b);
    }
  g_rand_free (rng);
}

static void
test_conv2d_sweep (void)
{
  GRand *rng = g_rand_new_with_seed (42);
  static const int ks[] = { 1, 3, 4 }, strides[] = { 1, 2 };
  static const int pads[] = { 0, 1, 2 }, dils[] = { 1, 2 };
  static const int hs[] = { 1, 5, 8, 13 }, ws[] = { 1, 7, 16 };
  int cases = 0;
  for (guint a = 0; a < G_N_ELEMENTS (ks); a++)
    for (guint b = 0; b < G_N_ELEMENTS (strides); b++)
      for (guint c = 0; c < G_N_ELEMENTS (pads); c++)
        for (guint d = 0; d < G_N_ELEMENTS (dils); d++)
          for (guint e = 0; e < G_N_ELEMENTS (hs); e++)
            for (guint f = 0; f < G_N_ELEMENTS (ws); f++) {
              const int h = hs[e], w = ws[f], cin = 3, cout = 5;
              CzConv cv = { cin, cout, ks[a], strides[b], pads[c], dils[d],
                NULL, NULL
              };
              const int ho = cz_conv_out_size (h, cv.k, cv.stride, cv.pad,
                  cv.dil);
              const int wo = cz_conv_out_size (w, cv.k, cv.stride, cv.pad,
                  cv.dil);
              if (ho <= 0 || wo <= 0)
                continue;
              float *wt = random_floats (rng, (size_t) cout * cin * cv.k *
                  cv.k);
              float *bias = random_floats (rng, cout);
              float *in = random_floats (rng, (size_t) cin * h * w);
              float *out = g_new (float, cout * ho * wo);
              float *ref = g_new (float, cout * ho * wo);
              float *scratch = g_new (float, cz_conv2d_scratch (&cv, h,
                      w) + 1);
              cv.weight = wt;
              cv.bias = bias;
              const int relu = (a + b + c) % 2;
              cz_conv2d (&cv, in, h, w, out, scratch, relu, 2);
              naive_conv (&cv, in, h, w, ref, relu);
              double diff = max_abs_diff (out, ref, (size_t) cout * ho * wo);
              if (diff > 1e-4)
                g_error ("conv2d k=%d stride=%d pad=%d dil=%d h=%d w=%d "
                    "relu=%d: max diff %g", cv.k, cv.stride, cv.pad, cv.dil,
                    h, w, relu, diff);
              cases++;
              g_free (wt);
              g_free (bias);
              g_free (in);
              g_free (out);
              g_free (ref);
              g_free (scratch);
            }
  g_assert_cmpint (cases, >, 100);
  g_rand_free (rng);
}

/* Winograd against the naive convolution: odd sizes, dilation 1 and 2
 * (polyphase tiles), partial tiles at every edge. */
static void
test_winograd_sweep (void)
{
  GRand *rng = g_rand_new_with_seed (99);
  static const int hs[] = { 1, 2, 5, 8, 13, 17 }, ws[] = { 1, 3, 4, 9, 22 };
  static const int dils[] = { 1, 2 }, cins[] = { 8, 11 };
  int cases = 0;
  for (guint a = 0; a < G_N_ELEMENTS (hs); a++)
    for (guint b = 0; b < G_N_ELEMENTS (ws); b++)
      for (guint dd = 0; dd < G_N_ELEMENTS (dils); dd++)
        for (guint e = 0; e < G_N_ELEMENTS (cins); e++) {
          const int h = hs[a], w = ws[b], cin = cins[e], cout = 5;
          CzConv cv = { cin, cout, 3, 1, dils[dd], dils[dd], NULL, NULL };
          float *wt = random_floats (rng, (size_t) cout * cin * 9);
          float *bias = random_floats (rng, cout);
          float *in = random_floats (rng, (size_t) cin * h * w);
          float *out = g_new (float, cout * h * w);
          float *ref = g_new (float, cout * h * w);
          cv.weight = wt;
          cv.bias = bias;
          g_assert_true (cz_winograd_applies (&cv));
          float *u = cz_winograd_weights (&cv);
          float *scratch = g_new (float, cz_winograd_scratch (&cv, h, w));
          const int relu = (a + b) % 2;
          cz_conv2d_winograd (&cv, u, in, h, w, out, scratch, relu, 2);
          naive_conv (&cv, in, h, w, ref, relu);
          double diff = max_abs_diff (out, ref, (size_t) cout * h * w);
          if (diff > 1e-3)
            g_error ("winograd dil=%d cin=%d h=%d w=%d relu=%d: max diff %g",
                cv.dil, cin, h, w, relu, diff);
          cases++;
          free (u);
          g_free (wt);
          g_free (bias);
          g_free (in);
          g_free (out);
          g_free (ref);
          g_free (scratch);
        }
  g_assert_cmpint (cases, ==, 120);
  g_rand_free (rng);
}

/* (c, h, w) float32 <-> nChw16c bfloat16 (c a multiple of 16) */
static void
to_blocked_bf16 (const float *x, int c, int h, int w, uint16_t * y)
{
  for (int ch = 0; ch < c; ch++)
    for (int i = 0; i < h * w; i++)
      y[((size_t) (ch / 16) * h * w + i) * 16 + ch % 16] =
          cz_bf16 (x[(size_t) ch * h * w + i]);
}

static void
from_blocked_bf16 (const uint16_t * y, int c, int h, int w, float *x)
{
  for (int ch = 0; ch < c; ch++)
    for (int i = 0; i < h * w; i++)
      x[(size_t) ch * h * w + i] =
          cz_bf16_float (y[((size_t) (ch / 16) * h * w + i) * 16 + ch % 16]);
}

/* The oneDNN backend's bf16 Winograd F(2x2, 3x3) transforms, with the
 * matrix product between them done here as oneDNN does it (bf16 operands,
 * float32 sums), against the naive convolution of the same bf16 input: at
 * every pixel (odd sizes, partial tiles, dilation 1 and 2, with and
 * without ReLU and norm) within 4x the error that a direct bf16
 * convolution makes (bf16 weights, float32 sums, bf16 output).  The tiles
 * run in chunks that start and end inside rows of tiles. */
static void
test_winograd_bf16_sweep (void)
{
  GRand *rng = g_rand_new_with_seed (17);
  static const int hs[] = { 1, 2, 5, 13, 28 }, ws[] = { 1, 3, 9, 22 };
  const int cin = 32, cout = 48;
  int cases = 0;
  double worst = 0.0;
  for (guint a = 0; a < G_N_ELEMENTS (hs); a++)
    for (guint b = 0; b < G_N_ELEMENTS (ws); b++)
      for (int d = 1; d <= 2; d++) {
        const int h = hs[a], w = ws[b], relu = (a + b + d) % 2;
        const int norm = (a + d) % 2;
        const size_t n_in = (size_t) cin * h * w, n_out = (size_t) cout *h * w;
        const int tiles = cz_wino2_tiles (h, w, d);
        float *wt = random_floats (rng, (size_t) cout * cin * 9);
        float *bias = random_floats (rng, cout);
        float *scale = random_floats (rng, cout);
        float *shift = random_floats (rng, cout);
        float *in = random_floats (rng, n_in);
        uint16_t *x = g_new (uint16_t, n_in), *y = g_new (uint16_t, n_out);
        to_blocked_bf16 (in, cin, h, w, x);
        from_blocked_bf16 (x, cin, h, w, in);   /* the input is bf16 */

        /* the reference, and a direct bf16 convolution */
        float *wt16 = g_new (float, (size_t) cout * cin * 9);
        for (int i = 0; i < cout * cin * 9; i++)
          wt16[i] = cz_bf16_float (cz_bf16 (wt[i]));
        float *ref = g_new (float, n_out), *direct = g_new (float, n_out);
        CzConv cv = { cin, cout, 3, 1, d, d, wt, bias };
        naive_conv (&cv, in, h, w, ref, relu);
        cv.weight = wt16;
        naive_conv (&cv, in, h, w, direct, relu);
        for (size_t i = 0; i < n_out; i++) {
          const int co = (int) (i / ((size_t) h * w));
          if (norm) {
            ref[i] = ref[i] * scale[co] + shift[co];
            direct[i] = direct[i] * scale[co] + shift[co];
          }
          direct[i] = cz_bf16_float (cz_bf16 (direct[i]));
        }

        /* in chunks of 7 tiles, as a layer too big for its scratch runs */
        const int chunk = 7;
        float *u = g_new (float, (size_t) CZ_WINO2_POS * cin * cout);
        uint16_t *v = g_new (uint16_t, (size_t) CZ_WINO2_POS * chunk * cin);
        float *m = g_new (float, (size_t) CZ_WINO2_POS * chunk * cout);
        cz_wino2_weights (wt, cout, cin, u);
        memset (y, 0xff, sizeof (uint16_t) * n_out);    /* NaN: unwritten */
        for (int t0 = 0; t0 < tiles; t0 += chunk) {
          const int count = MIN (chunk, tiles - t0);
          cz_wino2_input (x, cin, h, w, d, t0, count, chunk, v, 2);
          for (int p = 0; p < CZ_WINO2_POS; p++)
            for (int t = 0; t < count; t++)
              for (int co = 0; co < cout; co++) {
                float acc = 0.0f;
                for (int ci = 0; ci < cin; ci++)
                  acc += cz_bf16_float (cz_bf16 (u[((size_t) p * cin + ci)
                              * cout + co])) * cz_bf16_float (v[((size_t) p
                              * chunk + t) * cin + ci]);
                m[((size_t) p * chunk + t) * cout + co] = acc;
              }
          cz_wino2_output (m, cout, h, w, d, t0, count, chunk, bias, relu,
              norm ? scale : NULL, norm ? shift : NULL, y, 2);
        }
        float *out = g_new (float, n_out);
        from_blocked_bf16 (y, cout, h, w, out);

        const double err = max_abs_diff (out, ref, n_out);
        const double direct_err = max_abs_diff (direct, ref, n_out);
        if (!(err <= 4.0 * direct_err + 1e-6))  /* NaN fails too */
          g_error ("bf16 winograd d=%d h=%d w=%d relu=%d norm=%d: max diff "
              "%g, a direct bf16 conv's %g", d, h, w, relu, norm, err,
              direct_err);
        worst = MAX (worst, err / MAX (direct_err, 1e-6));
        cases++;
        g_free (wt);
        g_free (wt16);
        g_free (bias);
        g_free (scale);
        g_free (shift);
        g_free (in);
        g_free (x);
        g_free (y);
        g_free (ref);
        g_free (direct);
        g_free (u);
        g_free (v);
        g_free (m);
        g_free (out);
      }
  g_test_message ("%d cases; Winograd's error at most %.2fx a direct bf16 "
      "conv's", cases, worst);
  g_assert_cmpint (cases, ==, 40);
  g_rand_free (rng);
}

static void
test_deconv2d_sweep (void)
{
  GRand *rng = g_rand_new_with_seed (7);
  static const int hs[] = { 1, 2, 5, 11 }, ws[] = { 1, 3, 8 };
  static const int ks[] = { 2, 3, 4 }, pads[] = { 0, 1 };
  for (guint a = 0; a < G_N_ELEMENTS (hs); a++)
    for (guint b = 0; b < G_N_ELEMENTS (ws); b++)
      for (guint c = 0; c < G_N_ELEMENTS (ks); c++)
        for (guint d = 0; d < G_N_ELEMENTS (pads); d++) {
          const int h = hs[a], w = ws[b], cin = 4, cout = 3;
          CzConv cv = { cin, cout, ks[c], 2, pads[d], 1, NULL, NULL };
          const int ho = (h - 1) * 2 - 2 * cv.pad + cv.k;
          const int wo = (w - 1) * 2 - 2 * cv.pad + cv.k;
          if (ho <= 0 || wo <= 0)
            continue;
          float *wt = random_floats (rng, (size_t) cin * cout * cv.k * cv.k);
          float *bias = random_floats (rng, cout);
          float *in = random_floats (rng, (size_t) cin * h * w);
          float *out = g_new (float, cout * ho * wo);
          float *ref = g_new (float, cout * ho * wo);
          float *scratch = g_new (float, cz_deconv2d_scratch (&cv, h, w));
          cv.weight = wt;
          cv.bias = bias;
          cz_deconv2d (&cv, in, h, w, out, scratch, 0, 2);
          naive_deconv (&cv, in, h, w, ref);
          double diff = max_abs_diff (out, ref, (size_t) cout * ho * wo);
          if (diff > 1e-4)
            g_error ("deconv2d k=%d pad=%d h=%d w=%d: max diff %g", cv.k,
                cv.pad, h, w, diff);
          g_free (wt);
          g_free (bias);
          g_free (in);
          g_free (out);
          g_free (ref);
          g_free (scratch);
        }
  g_rand_free (rng);
}

/* The fast exp and log against libm over their ranges. */
static void
test_fast_exp_log (void)
{
  double worst_exp = 0.0, worst_log = 0.0;
  for (int i = 0; i <= 2000000; i++) {
    const float x = -87.0f + 175.0f * (float) i / 2000000.0f;
    const double ref = exp ((double) x);
    worst_exp = fmax (worst_exp, fabs (cz_exp (x) - ref) / ref);
    const float y = ldexpf (1.0f + (float) (i % 100000) / 100000.0f,
        i / 100000 - 120);      /* 2^-120 .. 2^-100 and on to 2^-100 */
    worst_log = fmax (worst_log, fabs (cz_log (y) - log ((double) y))
        / (1e-6 + 1.2e-7 * fabs (log ((double) y))));
  }
  for (int e = -126; e <= 127; e++)
    for (int i = 0; i < 1000; i++) {
      const float y = ldexpf (1.0f + i / 1000.0f, e);
      worst_log = fmax (worst_log, fabs (cz_log (y) - log ((double) y))
          / (1e-6 + 1.2e-7 * fabs (log ((double) y))));
    }
  g_test_message ("fast exp: relative error %g; fast log: error %g of "
      "1e-6 + 1.2e-7 |ln x|", worst_exp, worst_log);
  g_assert_cmpfloat (worst_exp, <, 3e-7);
  g_assert_cmpfloat (worst_log, <, 1.0);
  g_assert_cmpfloat (cz_exp (-1000.0f), <, 1e-37);
  g_assert_cmpfloat (cz_exp (0.0f), ==, 1.0f);
}

/* The fused annealed mean against softmax + weighted sum in double. */
static void
test_annealed_mean (void)
{
  GRand *rng = g_rand_new_with_seed (5);
  const int c = 313, n = 131;   /* two whole blocks of pixels and a part */
  float *x = random_floats (rng, (size_t) c * n);
  float (*bins)[2] = g_malloc (sizeof (float[2]) * c);
  for (int k = 0; k < c; k++) {
    bins[k][0] = (float) g_rand_double_range (rng, -100, 100);
    bins[k][1] = (float) g_rand_double_range (rng, -100, 100);
  }
  for (int i = 0; i < c * n; i++)
    x[i] *= 15.0f;
  float *ab = g_new (float, 2 * n);
  for (int nt = 1; nt <= 2; nt++) {
    cz_annealed_mean (x, c, n, 0.38f, (const float (*)[2]) bins, 0.9f, ab, nt);
    for (int i = 0; i < n; i++) {
      double m = -INFINITY, s = 0.0, sa = 0.0, sb = 0.0;
      for (int k = 0; k < c; k++)
        m = fmax (m, x[k * n + i] / 0.38);
      for (int k = 0; k < c; k++) {
        const double e = exp (x[k * n + i] / 0.38 - m);
        s += e;
        sa += e * bins[k][0];
        sb += e * bins[k][1];
      }
      g_assert_cmpfloat_with_epsilon (ab[i], 0.9 * sa / s, 1e-3);
      g_assert_cmpfloat_with_epsilon (ab[n + i], 0.9 * sb / s, 1e-3);
    }
  }
  g_free (ab);
  g_free (bins);
  g_free (x);
  g_rand_free (rng);
}

static void
test_softmax (void)
{
  GRand *rng = g_rand_new_with_seed (3);
  const int c = 313, n = 37;
  float *x = random_floats (rng, (size_t) c * n);
  float *orig = g_memdup2 (x, sizeof (float) * c * n);
  for (int i = 0; i < c * n; i++)
    x[i] = orig[i] *= 20.0f;    /* large logits: overflow must not happen */
  cz_softmax_channels (x, c, n, 0.38f, 2);
  for (int i = 0; i < n; i++) {
    double sum = 0.0, ref_sum = 0.0, m = -INFINITY;
    for (int k = 0; k < c; k++)
      m = fmax (m, orig[k * n + i] / 0.38);
    for (int k = 0; k < c; k++)
      ref_sum += exp (orig[k * n + i] / 0.38 - m);
    for (int k = 0; k < c; k++) {
      double ref = exp (orig[k * n + i] / 0.38 - m) / ref_sum;
      g_assert_cmpfloat_with_epsilon (x[k * n + i], ref, 1e-5);
      sum += x[k * n + i];
    }
    g_assert_cmpfloat_with_epsilon (sum, 1.0, 1e-4);
  }
  g_free (x);
  g_free (orig);
  g_rand_free (rng);
}

/* Bilinear (align_corners = false) for upscaling, written out directly. */
static float
naive_bilinear (const float *in, int hi, int wi, int ho, int wo, int y, int x)
{
  double sy = fmax ((y + 0.5) * hi / ho - 0.5, 0.0);
  double sx = fmax ((x + 0.5) * wi / wo - 0.5, 0.0);
  int y0 = (int) sy, x0 = (int) sx;
  int y1 = MIN (y0 + 1, hi - 1), x1 = MIN (x0 + 1, wi - 1);
  double fy = sy - y0, fx = sx - x0;
  return (float) ((1 - fy) * ((1 - fx) * in[y0 * wi + x0] + fx * in[y0 * wi +
              x1]) + fy * ((1 - fx) * in[y1 * wi + x0] + fx * in[y1 * wi +
              x1]));
}

static void
test_resample (void)
{
  GRand *rng = g_rand_new_with_seed (11);
  static const int sizes[][4] = {
    {5, 7, 20, 28}, {3, 3, 17, 9}, {1, 1, 4, 6}, {8, 11, 33, 45},
  };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    const int hi = sizes[s][0], wi = sizes[s][1];
    const int ho = sizes[s][2], wo = sizes[s][3];
    float *in = random_floats (rng, (size_t) hi * wi);
    float *out = g_new (float, ho * wo), *tmp = g_new (float, hi * wo);
    CzResampler *rx = cz_resampler_new (wi, wo), *ry = cz_resampler_new (hi,
        ho);
    cz_resample (rx, ry, 1, in, out, tmp, 2);
    for (int y = 0; y < ho; y++)
      for (int x = 0; x < wo; x++)
        g_assert_cmpfloat_with_epsilon (out[y * wo + x],
            naive_bilinear (in, hi, wi, ho, wo, y, x), 1e-5);

    /* downscaling keeps a constant and the mean of a ramp */
    CzResampler *dx = cz_resampler_new (wo, wi), *dy = cz_resampler_new (ho,
        hi);
    float *flat = g_new (float, ho * wo), *back = g_new (float, hi * wi);
    float *tmp2 = g_new (float, ho * wi);
    for (int i = 0; i < ho * wo; i++)
      flat[i] = 42.5f;
    cz_resample (dx, dy, 1, flat, back, tmp2, 1);
    for (int i = 0; i < hi * wi; i++)
      g_assert_cmpfloat_with_epsilon (back[i], 42.5f, 1e-4);
    cz_resampler_free (rx);
    cz_resampler_free (ry);
    cz_resampler_free (dx);
    cz_resampler_free (dy);
    g_free (in);
    g_free (out);
    g_free (tmp);
    g_free (flat);
    g_free (back);
    g_free (tmp2);
  }
  g_rand_free (rng);
}

static void
test_lab_known_values (void)
{
  /* sRGB primaries and white in CIELAB (D65), to 0.05 */
  static const float cases[][6] = {
    {1, 1, 1, 100.0f, 0.0f, 0.0f},
    {0, 0, 0, 0.0f, 0.0f, 0.0f},
    {1, 0, 0, 53.24f, 80.09f, 67.20f},
    {0, 1, 0, 87.73f, -86.18f, 83.18f},
    {0, 0, 1, 32.30f, 79.19f, -107.86f},
    {0.5f, 0.5f, 0.5f, 53.39f, 0.0f, 0.0f},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    float lab[3], rgb[3];
    cz_srgb_to_lab (cases[i], lab);
    for (int k = 0; k < 3; k++)
      if (fabsf (lab[k] - cases[i][3 + k]) > 0.05f)
        g_error ("rgb (%g %g %g): Lab[%d] = %g, expected %g", cases[i][0],
            cases[i][1], cases[i][2], k, lab[k], cases[i][3 + k]);
    cz_lab_to_srgb (lab, rgb);
    for (int k = 0; k < 3; k++)
      g_assert_cmpfloat_with_epsilon (rgb[k], cases[i][k], 1e-3);
  }
}

static void
test_lab_round_trip (void)
{
  GRand *rng = g_rand_new_with_seed (5);
  for (int i = 0; i < 10000; i++) {
    float rgb[3], lab[3], back[3];
    for (int k = 0; k < 3; k++)
      rgb[k] = (float) g_rand_double (rng);
    cz_srgb_to_lab (rgb, lab);
    cz_lab_to_srgb (lab, back);
    for (int k = 0; k < 3; k++)
      g_assert_cmpfloat_with_epsilon (back[k], rgb[k], 1e-3);
  }
  g_rand_free (rng);
}

static void
test_luma_round_trip (void)
{
  for (int limited = 0; limited <= 1; limited++) {
    float table[256], L[256];
    uint8_t codes[256], back[256];
    cz_luma_table (table, limited);
    int lo = limited ? 16 : 0, hi = limited ? 235 : 255;
    g_assert_cmpfloat_with_epsilon (table[lo], 0.0, 1e-4);
    g_assert_cmpfloat_with_epsilon (table[hi], 100.0, 1e-3);
    for (int i = 1; i < 256; i++)
      g_assert_cmpfloat (table[i], >=, table[i - 1]);
    for (int i = 0; i < 256; i++)
      codes[i] = (uint8_t) i;
    cz_read_luma8 (codes, 256, 1, 256, 1, table, L, 1);
    cz_write_luma8 (L, 256, 1, back, 256, limited, 1);
    for (int i = lo; i <= hi; i++)
      if (back[i] != i)
        g_error ("%s range: code %d -> L %g -> code %d",
            limited ? "limited" : "full", i, L[i], back[i]);
  }
}

static void
test_write_gray_is_gray (void)
{
  /* ab = 0 gives R = G = B = the input gray code; chroma = 128 */
  const int w = 256;
  float table[256], L[256], ab[512] = { 0 };
  uint8_t codes[256], rgb[256 * 4], u[256], v[256];
  cz_luma_table (table, FALSE);
  for (int i = 0; i < w; i++)
    codes[i] = (uint8_t) i;
  cz_read_luma8 (codes, w, 1, w, 1, table, L, 1);
  CzRgbLayout lay = { 2, 1, 0, 3, 4 };  /* BGRA */
  cz_write_rgb8 (L, ab, w, 1, rgb, w * 4, &lay, TRUE, 2);
  CzYuvMatrix m = { 0.299, 0.114, TRUE };
  cz_write_chroma8 (L, ab, w, 1, u, w, v, w, 1, &m, 2);
  for (int i = 0; i < w; i++) {
    g_assert_cmpint (rgb[4 * i + 0], ==, i);
    g_assert_cmpint (rgb[4 * i + 1], ==, i);
    g_assert_cmpint (rgb[4 * i + 2], ==, i);
    g_assert_cmpint (rgb[4 * i + 3], ==, 255);
    g_assert_cmpint (u[i], ==, 128);
    g_assert_cmpint (v[i], ==, 128);
  }
}

static void
test_chroma_of_red (void)
{
  /* Lab of pure red -> BT.601 limited range Cb, Cr of (255, 0, 0) */
  float lab[3], rgb[3] = { 1, 0, 0 };
  cz_srgb_to_lab (rgb, lab);
  float L = lab[0], ab[2] = { lab[1], lab[2] };
  uint8_t u, v;
  CzYuvMatrix m = { 0.299, 0.114, TRUE };
  cz_write_chroma8 (&L, ab, 1, 1, &u, 1, &v, 1, 1, &m, 1);
  /* Cb = 128 - 0.1687 * 224 / 0.886 ..., Cr = 240 */
  g_assert_cmpint (abs (u - 90), <=, 1);
  g_assert_cmpint (abs (v - 240), <=, 1);
}

static void
test_gamut_matches_csv (void)
{
  const char *path = g_getenv ("CZ_BINS_CSV");
  gchar *text = NULL;
  g_assert_nonnull (path);
  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  gchar **lines = g_strsplit (text, "\n", -1);
  int n = 0;
  for (gchar ** l = lines; *l; l++) {
    if (**l == '#' || **l == '\0')
      continue;
    int a, b;
    g_assert_cmpint (sscanf (*l, "%d,%d", &a, &b), ==, 2);
    g_assert_cmpint (n, <, CZ_N_BINS);
    g_assert_cmpfloat (cz_bins[n][0], ==, a);
    g_assert_cmpfloat (cz_bins[n][1], ==, b);
    n++;
  }
  g_assert_cmpint (n, ==, CZ_N_BINS);
  g_strfreev (lines);
  g_free (text);
}

/* Feeds the thread choice frame times from a model of the machine: `all`
 * seconds a frame on every thread, `one` on one thread; returns how many of
 * `frames` frames ran on every thread. */
static int
run_choice (CzThreadChoice * c, int frames, double all, double one)
{
  int on_all = 0;
  for (int i = 0; i < frames; i++) {
    const int nt = cz_thread_choice_next (c);
    g_assert_true (nt == 1 || nt == c->max);
    on_all += nt == c->max;
    cz_thread_choice_done (c, nt, nt == c->max ? all : one);
  }
  return on_all;
}

/* Idle: all threads, bar the probes; a busy machine that makes the team
 * slower than one thread: one thread within two probes; idle again: back. */
static void
test_thread_choice (void)
{
  CzThreadChoice c;
  cz_thread_choice_init (&c, 4);
  g_assert_cmpint (cz_thread_choice_next (&c), ==, 4);
  g_assert_cmpint (run_choice (&c, 64, 0.010, 0.030), ==, 64 - 64 / 16);
  g_assert_cmpint (c.use_max, ==, 1);
  run_choice (&c, 2 * CZ_THREAD_PROBE, 0.080, 0.040);
  g_assert_cmpint (c.use_max, ==, 0);
  g_assert_cmpint (run_choice (&c, 64, 0.080, 0.040), ==, 64 / 16);
  run_choice (&c, 3 * CZ_THREAD_PROBE, 0.010, 0.030);
  g_assert_cmpint (c.use_max, ==, 1);
  /* equal times: no flapping */
  cz_thread_choice_init (&c, 2);
  g_assert_cmpint (run_choice (&c, 64, 0.020, 0.0205), ==, 60);
  /* one thread allowed: always one */
  cz_thread_choice_init (&c, 1);
  g_assert_cmpint (run_choice (&c, 40, 0.5, 0.1), ==, 40);
}

static void
test_net_dims (void)
{
  static const int cases[][5] = {
    {640, 480, 128, 168, 128}, {480, 640, 128, 128, 168},
    {224, 224, 224, 224, 224}, {1, 1, 128, 128, 128},
    {1920, 1080, 128, 224, 128}, {10000, 1, 64, 512, 64},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    int w, h;
    cz_colorizer_net_dims (cases[i][0], cases[i][1], cases[i][2], &w, &h);
    g_assert_cmpint (w, ==, cases[i][3]);
    g_assert_cmpint (h, ==, cases[i][4]);
  }
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/core/gemm-batch", test_gemm_batch);
  g_test_add_func ("/core/conv2d-sweep", test_conv2d_sweep);
  g_test_add_func ("/core/winograd-sweep", test_winograd_sweep);
  g_test_add_func ("/core/winograd-bf16-sweep", test_winograd_bf16_sweep);
  g_test_add_func ("/core/deconv2d-sweep", test_deconv2d_sweep);
  g_test_add_func ("/core/softmax", test_softmax);
  g_test_add_func ("/core/fast-exp-log", test_fast_exp_log);
  g_test_add_func ("/core/annealed-mean", test_annealed_mean);
  g_test_add_func ("/core/resample", test_resample);
  g_test_add_func ("/color/lab-known-values", test_lab_known_values);
  g_test_add_func ("/color/lab-round-trip", test_lab_round_trip);
  g_test_add_func ("/color/luma-round-trip", test_luma_round_trip);
  g_test_add_func ("/color/gray-stays-gray", test_write_gray_is_gray);
  g_test_add_func ("/color/chroma-of-red", test_chroma_of_red);
  g_test_add_func ("/color/gamut-matches-csv", test_gamut_matches_csv);
  g_test_add_func ("/colorizer/net-dims", test_net_dims);
  g_test_add_func ("/colorizer/thread-choice", test_thread_choice);
  return g_test_run ();
}
