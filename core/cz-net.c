#include "cz-net.h"

#include <math.h>
#include <stdlib.h>

static const float *
tensor (const CzModel * m, const char *layer, const char *what)
{
  char name[32];
  g_snprintf (name, sizeof name, "%s.%s", layer, what);
  return cz_model_tensor (m, name);
}

CzNet *
cz_net_new (const CzModel * m)
{
  CzNet *n = g_new0 (CzNet, 1);
  n->deconv_index = -1;
  n->no_winograd = cz_winograd_disabled ();
  for (int i = 0; i < CZ_N_LAYERS; i++) {
    const CzLayer *l = &cz_layers[i];
    n->conv[i] = (CzConv) {
    cz_layer_channels (l->in, m->widths), cz_layer_channels (l->out,
          m->widths), l->k, l->stride, l->pad, l->dil,
          tensor (m, l->name, "weight"), tensor (m, l->name, "bias")};
    n->relu[i] = l->relu;
    n->bn_after[i] = l->bn - 1;
    if (l->kind == CZ_LAYER_DECONV)
      n->deconv_index = i;
    if (!l->bn)
      continue;
    /* y = gamma * (x - mean) / sqrt(var + eps) + beta = x * scale + shift */
    char bn[8];
    g_snprintf (bn, sizeof bn, "bn%d", l->bn);
    const float *mean = tensor (m, bn, "mean"), *var = tensor (m, bn, "var");
    const float *gamma = tensor (m, bn, "weight");
    const float *beta = tensor (m, bn, "bias");
    const int c = n->conv[i].cout;
    n->bn_scale[l->bn - 1] = g_new (float, c);
    n->bn_shift[l->bn - 1] = g_new (float, c);
    for (int k = 0; k < c; k++) {
      n->bn_scale[l->bn - 1][k] = gamma[k] / sqrtf (var[k] + m->bn_eps);
      n->bn_shift[l->bn - 1][k] = beta[k] - mean[k] * n->bn_scale[l->bn - 1][k];
    }
  }
  n->n_convs = CZ_N_LAYERS;
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
    float *y = n->act[cur];
    if (i == n->deconv_index) {
      cz_deconv2d (c, x, h, w, y, n->scratch, n->relu[i], n_threads);
      h = (h - 1) * c->stride - 2 * c->pad + c->k;
      w = (w - 1) * c->stride - 2 * c->pad + c->k;
    } else if (n->use_wino[i]) {
      cz_conv2d_winograd (c, n->wino[i], x, h, w, y, n->scratch, n->relu[i],
          n_threads);
    } else {
      cz_conv2d (c, x, h, w, y, n->scratch, n->relu[i], n_threads);
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
