#include "cz-net.h"

#include <math.h>
#include <stdlib.h>

static void
add_conv (CzNet * n, const CzModel * m, const char *name, int cin, int cout,
    int k, int stride, int pad, int dil)
{
  char w[32], b[32];
  g_snprintf (w, sizeof w, "%s.weight", name);
  g_snprintf (b, sizeof b, "%s.bias", name);
  g_assert (n->n_convs < CZ_NET_MAX_CONVS);
  n->bn_after[n->n_convs] = -1;
  n->conv[n->n_convs++] = (CzConv) {
  cin, cout, k, stride, pad, dil, cz_model_tensor (m, w),
        cz_model_tensor (m, b)};
}

CzNet *
cz_net_new (const CzModel * m)
{
  CzNet *n = g_new0 (CzNet, 1);
  int cin = 1;
  for (int b = 1; b <= 7; b++) {
    const int c = m->widths[b - 1], convs = cz_model_block_convs (b);
    const int dil = (b == 5 || b == 6) ? 2 : 1;
    for (int i = 1; i <= convs; i++) {
      char name[16];
      g_snprintf (name, sizeof name, "conv%d_%d", b, i);
      add_conv (n, m, name, cin, c, 3, (i == convs && b <= 3) ? 2 : 1, dil,
          dil);
      cin = c;
    }
    n->bn_after[n->n_convs - 1] = b - 1;

    /* y = gamma * (x - mean) / sqrt(var + eps) + beta = x * scale + shift */
    char name[16];
    const float *mean, *var, *gamma, *beta;
#define BN(field, var_) g_snprintf (name, sizeof name, "bn%d." field, b); \
    var_ = cz_model_tensor (m, name)
    BN ("mean", mean);
    BN ("var", var);
    BN ("weight", gamma);
    BN ("bias", beta);
#undef BN
    n->bn_scale[b - 1] = g_new (float, c);
    n->bn_shift[b - 1] = g_new (float, c);
    for (int i = 0; i < c; i++) {
      n->bn_scale[b - 1][i] = gamma[i] / sqrtf (var[i] + m->bn_eps);
      n->bn_shift[b - 1][i] = beta[i] - mean[i] * n->bn_scale[b - 1][i];
    }
  }
  const int c8 = m->widths[7];
  n->deconv_index = n->n_convs;
  add_conv (n, m, "conv8_1", cin, c8, 4, 2, 1, 1);
  add_conv (n, m, "conv8_2", c8, c8, 3, 1, 1, 1);
  add_conv (n, m, "conv8_3", c8, c8, 3, 1, 1, 1);
  add_conv (n, m, "conv8_313", c8, CZ_N_BINS, 1, 1, 0, 1);
  return n;
}

static void
free_buffers (CzNet * n)
{
  g_free (n->act[0]);
  g_free (n->act[1]);
  g_free (n->scratch);
  n->act[0] = n->act[1] = n->scratch = NULL;
  n->h = n->w = 0;
}

void
cz_net_free (CzNet * n)
{
  if (!n)
    return;
  free_buffers (n);
  for (int i = 0; i < n->n_convs; i++)
    free (n->wino[i]);
  for (int b = 0; b < 7; b++) {
    g_free (n->bn_scale[b]);
    g_free (n->bn_shift[b]);
  }
  g_free (n);
}

/* Winograd pays on big layers only: measured on 2 cores, the 128-channel
 * layers at 42x32 (2.2e7 cin*cout*pixels) ran faster by im2col, the
 * 64->128 layer at 112x112 (1.0e8) and everything wider by Winograd. */
#define WINOGRAD_MIN_WORK (1u << 25)

/* Walks the layers for an input of h x w: picks the algorithm of each and
 * reports the largest activation and scratch sizes, in floats. */
static void
plan (CzNet * n, int h, int w, size_t *act, size_t *scratch)
{
  *act = (size_t) (w * h);      /* the input plane */
  *scratch = 0;
  for (int i = 0; i < n->n_convs; i++) {
    const CzConv *c = &n->conv[i];
    size_t s;
    if (i == n->deconv_index) {
      s = cz_deconv2d_scratch (c, h, w);
      h = (h - 1) * c->stride - 2 * c->pad + c->k;
      w = (w - 1) * c->stride - 2 * c->pad + c->k;
    } else {
      n->use_wino[i] = !n->no_winograd && cz_winograd_applies (c)
          && (size_t) c->cin * c->cout * h * w >= WINOGRAD_MIN_WORK;
      s = n->use_wino[i] ? cz_winograd_scratch (c, h, w)
          : cz_conv2d_scratch (c, h, w);
      h = cz_conv_out_size (h, c->k, c->stride, c->pad, c->dil);
      w = cz_conv_out_size (w, c->k, c->stride, c->pad, c->dil);
    }
    *scratch = MAX (*scratch, s);
    *act = MAX (*act, (size_t) c->cout * h * w);
  }
}

void
cz_net_disable_winograd (CzNet * n)
{
  for (int i = 0; i < n->n_convs; i++) {
    free (n->wino[i]);
    n->wino[i] = NULL;
  }
  n->no_winograd = 1;
  free_buffers (n);             /* the scratch size changes */
}

gboolean
cz_net_prepare (CzNet * n, int h, int w)
{
  g_return_val_if_fail (h > 0 && w > 0 && h % 8 == 0 && w % 8 == 0, FALSE);
  if (n->h == h && n->w == w)
    return TRUE;
  free_buffers (n);
  size_t act, scratch;
  plan (n, h, w, &act, &scratch);
  /* Winograd weights take 4x the memory of the kernels: only for layers
   * that use them at some size */
  for (int i = 0; i < n->n_convs; i++)
    if (n->use_wino[i] && !n->wino[i]
        && !(n->wino[i] = cz_winograd_weights (&n->conv[i])))
      return FALSE;
  n->act[0] = g_try_new (float, act);
  n->act[1] = g_try_new (float, act);
  n->scratch = g_try_new (float, MAX (scratch, 1));
  if (!n->act[0] || !n->act[1] || !n->scratch) {
    free_buffers (n);
    return FALSE;
  }
  n->h = h;
  n->w = w;
  return TRUE;
}

const float *
cz_net_forward (CzNet * n, const float *in, int n_threads)
{
  int h = n->h, w = n->w, cur = 0;
  const float *x = in;
  for (int i = 0; i < n->n_convs; i++) {
    const CzConv *c = &n->conv[i];
    const int last = i == n->n_convs - 1;
    float *y = n->act[cur];
    if (i == n->deconv_index) {
      cz_deconv2d (c, x, h, w, y, n->scratch, 1, n_threads);
      h = (h - 1) * c->stride - 2 * c->pad + c->k;
      w = (w - 1) * c->stride - 2 * c->pad + c->k;
    } else if (n->use_wino[i]) {
      cz_conv2d_winograd (c, n->wino[i], x, h, w, y, n->scratch, !last,
          n_threads);
    } else {
      cz_conv2d (c, x, h, w, y, n->scratch, !last, n_threads);
      h = cz_conv_out_size (h, c->k, c->stride, c->pad, c->dil);
      w = cz_conv_out_size (w, c->k, c->stride, c->pad, c->dil);
    }
    if (n->bn_after[i] >= 0)
      cz_channel_affine (y, c->cout, h * w, n->bn_scale[n->bn_after[i]],
          n->bn_shift[n->bn_after[i]], n_threads);
    x = y;
    cur ^= 1;
  }
  return x;
}
