#include "cz-colorizer.h"

#include <math.h>
#include <string.h>

#include "cz-color.h"
#include "cz-net.h"
#include "cz-ops.h"
#ifdef CZ_HAVE_DNNL
#include "cz-dnnl.h"
#endif

struct CzColorizer
{
  const CzModel *model;
  CzNet *net;                   /* the OpenBLAS path, or */
#ifdef CZ_HAVE_DNNL
  CzDnnlNet *dnnl;              /* the oneDNN one */
#endif
  char backend[32];
  CzTimings timings;            /* of the last run */
  int n_threads;                /* the most threads allowed */
  CzThreadChoice threads;

  int w, h, cw, ch, nw, nh, qw, qh;     /* frame, output, net in, net out */
  CzResampler *to_net_x, *to_net_y;     /* frame -> net input */
  CzResampler *to_out_x, *to_out_y;     /* frame -> output grid (L) */
  CzResampler *up_x, *up_y;     /* net output -> output grid (ab) */

  float *luma;                  /* (h, w) L*, filled by the caller */
  float *net_in;                /* (nh, nw) L* - 50 */
  float *prev_in;               /* (nh, nw) previous frame's net_in */
  float *prob;                  /* (313, qh, qw) */
  float *prev_prob;             /* (313, qh, qw) smoothed distribution */
  float *mix_w;                 /* (qh, qw) weight of the past, per pixel */
  gboolean have_prev;
  float *ab_small;              /* (2, qh, qw) */
  float *L_out;                 /* (ch, cw), or luma when the grids agree */
  float *ab_out;                /* (2, ch, cw) */
  float *tmp;                   /* resampling scratch */
};

GQuark
cz_colorizer_error_quark (void)
{
  return g_quark_from_static_string ("cz-colorizer-error-quark");
}

CzColorizer *
cz_colorizer_new (const CzModel * model, int n_threads)
{
  return cz_colorizer_new_full (model, n_threads, CZ_BACKEND_AUTO,
      CZ_PRECISION_AUTO, NULL);
}

gboolean
cz_backend_available (CzBackend backend)
{
#ifdef CZ_HAVE_DNNL
  return TRUE;
#else
  return backend != CZ_BACKEND_ONEDNN;
#endif
}

/* The widest layer from which the OpenBLAS path, in fp32, is faster than
 * oneDNN's fp32 (bench-net at 224x224, median ms, OpenBLAS / oneDNN; AMD
 * Zen 3, AVX2, 1 and 2 threads: widths x3/8 (192) 160 / 115 and 104 / 78,
 * x1/2 (256) 206 / 251 and 138 / 123, x3/4 (384) 378 / 577 and 217 / 322,
 * the paper's (512) 643 / 888 and 379 / 597; Zen 4, AVX-512: the paper's
 * 460 / 550 and 258 / 283). */
#define WIDE_NET 384

CzBackend
cz_backend_auto (const CzModel * model, CzPrecision precision)
{
#ifdef CZ_HAVE_DNNL
  int widest = 0;
  for (int b = 0; b < CZ_N_BLOCKS; b++)
    widest = MAX (widest, model->widths[b]);
  const gboolean fp32 = precision == CZ_PRECISION_FP32
      || (precision == CZ_PRECISION_AUTO && !cz_dnnl_bf16_native ());
  return fp32 && widest >= WIDE_NET ? CZ_BACKEND_OPENBLAS : CZ_BACKEND_ONEDNN;
#else
  return CZ_BACKEND_OPENBLAS;
#endif
}

CzColorizer *
cz_colorizer_new_full (const CzModel * model, int n_threads,
    CzBackend backend, CzPrecision precision, GError ** error)
{
  const gboolean automatic = backend == CZ_BACKEND_AUTO;
  if (automatic)
    backend = cz_backend_auto (model, precision);
  if (!cz_backend_available (backend)) {
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_BACKEND,
        "this build has no oneDNN backend (libdnnl-dev was not found)");
    return NULL;
  }
  if (backend == CZ_BACKEND_OPENBLAS && precision == CZ_PRECISION_BF16) {
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_BACKEND,
        "bf16 needs the oneDNN backend; the OpenBLAS one computes in fp32");
    return NULL;
  }
#ifdef CZ_HAVE_DNNL
  if (backend == CZ_BACKEND_ONEDNN && precision == CZ_PRECISION_BF16
      && !cz_dnnl_bf16_available ()) {
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_BACKEND,
        "this CPU cannot compute bf16 (oneDNN has it only on CPUs with "
        "AVX-512); use precision fp32 or auto");
    return NULL;
  }
#endif
  CzColorizer *cz = g_new0 (CzColorizer, 1);
  cz->model = model;
  cz->n_threads = n_threads > 0 ? n_threads : (int) g_get_num_processors ();
  cz_thread_choice_init (&cz->threads, cz->n_threads);
#ifdef CZ_HAVE_DNNL
  if (backend == CZ_BACKEND_ONEDNN) {
    const gboolean bf16 = precision == CZ_PRECISION_BF16
        || (precision == CZ_PRECISION_AUTO && cz_dnnl_bf16_native ());
    GError *err = NULL;
    cz->dnnl = cz_dnnl_net_new (model, bf16, &err);
    if (cz->dnnl) {
      g_strlcpy (cz->backend, bf16 ? "onednn bf16" : "onednn fp32",
          sizeof cz->backend);
      return cz;
    }
    if (!automatic) {           /* auto falls back on OpenBLAS */
      g_propagate_error (error, err);
      g_free (cz);
      return NULL;
    }
    g_error_free (err);
  }
#endif
  cz->net = cz_net_new (model);
  g_strlcpy (cz->backend, "openblas fp32", sizeof cz->backend);
  return cz;
}

const CzTimings *
cz_colorizer_timings (const CzColorizer * cz)
{
  return &cz->timings;
}

const char *
cz_colorizer_backend (const CzColorizer * cz)
{
  return cz->backend;
}

void
cz_thread_choice_init (CzThreadChoice * c, int max)
{
  memset (c, 0, sizeof *c);
  c->max = MAX (max, 1);
  c->use_max = 1;
}

int
cz_thread_choice_next (const CzThreadChoice * c)
{
  const int probe = c->frame % CZ_THREAD_PROBE == CZ_THREAD_PROBE - 1;
  return (c->use_max != probe) ? c->max : 1;
}

void
cz_thread_choice_done (CzThreadChoice * c, int n_threads, double seconds)
{
  const int k = n_threads == c->max;
  /* a probe, rare, weighs more than a frame of the current choice */
  const double w = k == c->use_max ? 0.25 : 0.5;
  c->est[k] = c->seen[k] ? (1.0 - w) * c->est[k] + w * seconds : seconds;
  c->seen[k] = 1;
  c->frame++;
  /* 5 % of hysteresis: no flapping between two about equal choices */
  if (c->seen[0] && c->seen[1]) {
    if (c->est[1] < 0.95 * c->est[0])
      c->use_max = 1;
    else if (c->est[0] < 0.95 * c->est[1])
      c->use_max = 0;
  }
}

static void
free_buffers (CzColorizer * cz)
{
  cz_resampler_free (cz->to_net_x);
  cz_resampler_free (cz->to_net_y);
  cz_resampler_free (cz->to_out_x);
  cz_resampler_free (cz->to_out_y);
  cz_resampler_free (cz->up_x);
  cz_resampler_free (cz->up_y);
  if (cz->L_out != cz->luma)
    g_free (cz->L_out);
  g_free (cz->luma);
  g_free (cz->net_in);
  g_free (cz->prev_in);
  g_free (cz->prob);
  g_free (cz->prev_prob);
  g_free (cz->mix_w);
  g_free (cz->ab_small);
  g_free (cz->ab_out);
  g_free (cz->tmp);
  cz->to_net_x = cz->to_net_y = cz->to_out_x = cz->to_out_y = NULL;
  cz->up_x = cz->up_y = NULL;
  cz->luma = cz->net_in = cz->prev_in = cz->prob = cz->prev_prob = NULL;
  cz->mix_w = NULL;
  cz->ab_small = cz->ab_out = cz->L_out = cz->tmp = NULL;
  cz->have_prev = FALSE;
  cz->w = cz->h = cz->cw = cz->ch = cz->nw = cz->nh = cz->qw = cz->qh = 0;
  cz_thread_choice_init (&cz->threads, cz->n_threads);  /* new sizes, new times */
}

void
cz_colorizer_free (CzColorizer * cz)
{
  if (!cz)
    return;
  free_buffers (cz);
  cz_net_free (cz->net);
#ifdef CZ_HAVE_DNNL
  cz_dnnl_net_free (cz->dnnl);
#endif
  g_free (cz);
}

int
cz_colorizer_n_threads (const CzColorizer * cz)
{
  return cz_thread_choice_next (&cz->threads);
}

void
cz_colorizer_net_dims (int w, int h, int net_size, int *net_w, int *net_h)
{
  const int short_side = MIN (w, h), long_side = MAX (w, h);
  int other = (int) lround ((double) net_size * long_side / short_side / 8.0)
      * 8;
  other = CLAMP (other, net_size, 8 * net_size);
  *net_w = w <= h ? net_size : other;
  *net_h = w <= h ? other : net_size;
}

gboolean
cz_colorizer_configure (CzColorizer * cz, int w, int h, int cw, int ch,
    int net_size, GError ** error)
{
  if (net_size == 0)
    net_size = cz->model->net_size;
  free_buffers (cz);
  if (w <= 0 || h <= 0 || cw <= 0 || ch <= 0 || net_size % 8 != 0
      || net_size < 8 || (size_t) w * h > CZ_MAX_FRAME_PIXELS) {
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_SIZE,
        "unsupported frame %dx%d (output %dx%d) at net size %d; the limit is "
        "%d pixels a frame and net sizes are multiples of 8", w, h, cw, ch,
        net_size, CZ_MAX_FRAME_PIXELS);
    return FALSE;
  }
  int nw, nh;
  cz_colorizer_net_dims (w, h, net_size, &nw, &nh);
  if ((size_t) nw * nh > CZ_MAX_NET_PIXELS) {
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_SIZE,
        "a %dx%d frame at net size %d needs a %dx%d net input, above the "
        "limit of %d pixels: lower net-size", w, h, net_size, nw, nh,
        CZ_MAX_NET_PIXELS);
    return FALSE;
  }
  cz->w = w;
  cz->h = h;
  cz->cw = cw;
  cz->ch = ch;
  cz->nw = nw;
  cz->nh = nh;
  cz->qw = cz->nw / 4;
  cz->qh = cz->nh / 4;
  const size_t q = (size_t) cz->qw * cz->qh, n = (size_t) cz->nw * cz->nh;

  cz->to_net_x = cz_resampler_new (w, cz->nw);
  cz->to_net_y = cz_resampler_new (h, cz->nh);
  cz->up_x = cz_resampler_new (cz->qw, cw);
  cz->up_y = cz_resampler_new (cz->qh, ch);
  cz->luma = g_try_new (float, (size_t) w * h);
  cz->net_in = g_try_new (float, n);
  cz->prev_in = g_try_new (float, n);
  cz->prob = g_try_new (float, CZ_N_BINS * q);
  cz->prev_prob = g_try_new (float, CZ_N_BINS * q);
  cz->mix_w = g_try_new (float, q);
  cz->ab_small = g_try_new (float, 2 * q);
  cz->ab_out = g_try_new (float, 2 * (size_t) cw * ch);
  /* scratch for the widest of the three resamplings */
  size_t tmp = MAX ((size_t) h * cz->nw, 2 * (size_t) cz->qh * cw);
  if (cw != w || ch != h) {
    cz->to_out_x = cz_resampler_new (w, cw);
    cz->to_out_y = cz_resampler_new (h, ch);
    cz->L_out = g_try_new (float, (size_t) cw * ch);
    tmp = MAX (tmp, (size_t) h * cw);
  } else {
    cz->L_out = cz->luma;
  }
  cz->tmp = g_try_new (float, tmp);
  gboolean ok = cz->to_net_x && cz->to_net_y && cz->up_x && cz->up_y
      && cz->luma && cz->net_in && cz->prev_in && cz->prob && cz->prev_prob
      && cz->mix_w
      && cz->ab_small && cz->ab_out && cz->L_out && cz->tmp
      && (cw == w || (cz->to_out_x && cz->to_out_y))
      && (!cz->net || cz_net_prepare (cz->net, cz->nh, cz->nw));
  if (!ok) {
    free_buffers (cz);
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_NO_MEMORY,
        "out of memory for %dx%d frames at net size %d", w, h, net_size);
    return FALSE;
  }
#ifdef CZ_HAVE_DNNL
  GError *err = NULL;
  if (cz->dnnl && !cz_dnnl_net_prepare (cz->dnnl, cz->nh, cz->nw,
          cz->n_threads, &err)) {
    free_buffers (cz);
    g_set_error (error, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_NO_MEMORY,
        "%dx%d frames at net size %d: %s", w, h, net_size, err->message);
    g_error_free (err);
    return FALSE;
  }
#endif
  return TRUE;
}

float *
cz_colorizer_luma (CzColorizer * cz)
{
  return cz->luma;
}

void
cz_colorizer_reset (CzColorizer * cz)
{
  cz->have_prev = FALSE;
}

const float *
cz_colorizer_ab_small (const CzColorizer * cz, int *w, int *h)
{
  *w = cz->qw;
  *h = cz->qh;
  return cz->ab_small;
}

/* Mean |dL*| / 100 between this frame's net input and the last one's; in
 * one thread, so that the sum -- and the scene-cut decision -- does not
 * depend on the thread count (a net input is ~20,000 values). */
static float
frame_difference (const float *a, const float *b, size_t n)
{
  double sum = 0.0;
  for (size_t i = 0; i < n; i++)
    sum += fabsf (a[i] - b[i]);
  return (float) (sum / n / 100.0);
}

/* The weight of the past for each output pixel: alpha where its 4x4 block
 * of the net input kept its lightness, falling to alpha/2 at a mean |dL*| of
 * `motion` plus CZ_MOTION_FRAME times the frame's mean change and on towards
 * 0, so that a moving object keeps its own colour while still areas stay
 * steady.  The frame's mean is there because a hand-held camera or foliage
 * in the wind moves every pixel a little, and there averaging the past
 * helps more than it smears: on tree.avi (bench/bench-flicker.py, smoothing
 * 0.9, motion 5) 2x the mean left 0.278 flicker / 11.23 error on moving
 * pixels, 4x 0.257 / 11.16, 8x 0.239 / 11.11, 16x 0.229 / 11.10, 32x
 * 0.225 / 11.10 (the fixed weight: 0.224 / 11.11), while the still camera
 * of box.mp4 keeps most of its gain at 16x (23.77 against the fixed
 * weight's 23.85) and less at 32x (23.81). */
#define CZ_MOTION_FRAME 16.0f

static void
motion_weights (const CzColorizer * cz, float alpha, float motion)
{
  const int nw = cz->nw;
  double total = 0.0;
  for (int y = 0; y < cz->qh; y++)
    for (int x = 0; x < cz->qw; x++) {
      float d = 0.0f;
      for (int dy = 0; dy < 4; dy++) {
        const size_t row = (size_t) (4 * y + dy) * nw + 4 * x;
        for (int dx = 0; dx < 4; dx++)
          d += fabsf (cz->net_in[row + dx] - cz->prev_in[row + dx]);
      }
      cz->mix_w[(size_t) y * cz->qw + x] = d / 16.0f;
      total += d / 16.0f;
    }
  const size_t q = (size_t) cz->qw * cz->qh;
  const float scale = motion + CZ_MOTION_FRAME * (float) (total / q);
  for (size_t j = 0; j < q; j++) {
    const float r = cz->mix_w[j] / scale;
    cz->mix_w[j] = alpha / (1.0f + r * r);
  }
}

void
cz_colorizer_run (CzColorizer * cz, const CzParams * p, const float **L,
    const float **ab)
{
  const int nt = cz_thread_choice_next (&cz->threads);
  const gint64 t0 = g_get_monotonic_time ();
  const size_t n = (size_t) cz->nw * cz->nh, q = (size_t) cz->qw * cz->qh;
  g_assert (cz->luma != NULL);

  cz_resample (cz->to_net_x, cz->to_net_y, 1, cz->luma, cz->net_in, cz->tmp,
      nt);
  for (size_t i = 0; i < n; i++)
    cz->net_in[i] -= 50.0f;
  const gint64 t1 = g_get_monotonic_time ();

  const gboolean smooth = p->smoothing > 0.0f;
  gboolean mix = smooth && cz->have_prev;
  if (mix && p->scene_threshold > 0.0f
      && frame_difference (cz->net_in, cz->prev_in, n) > p->scene_threshold)
    mix = FALSE;

#ifdef CZ_HAVE_DNNL
  const float *logits = cz->dnnl ? cz_dnnl_net_forward (cz->dnnl, cz->net_in,
      nt) : cz_net_forward (cz->net, cz->net_in, nt);
#else
  const float *logits = cz_net_forward (cz->net, cz->net_in, nt);
#endif
  const gint64 t2 = g_get_monotonic_time ();
  const float *x = logits;      /* what the annealed mean softmaxes */
  if (smooth) {
    /* Mix on the simplex at T = 1, then anneal the mixture:
     * f_T(p) = p^(1/T) / sum = softmax(log p / T). */
    memcpy (cz->prob, logits, sizeof (float) * CZ_N_BINS * q);
    cz_softmax_channels (cz->prob, CZ_N_BINS, (int) q, 1.0f, nt);
    if (mix) {
      /* the weight of the past: per pixel, or alpha everywhere (where
       * nothing moved, motion_weights gives alpha: the same numbers) */
      if (p->motion > 0.0f)
        motion_weights (cz, p->smoothing, p->motion);
      else
        for (size_t j = 0; j < q; j++)
          cz->mix_w[j] = p->smoothing;
#pragma omp parallel for num_threads(nt) schedule(static)
      for (size_t c = 0; c < CZ_N_BINS; c++)
        for (size_t j = 0; j < q; j++) {
          const size_t i = c * q + j;
          const float w = cz->mix_w[j];
          cz->prob[i] = (1.0f - w) * cz->prob[i] + w * cz->prev_prob[i];
        }
    }
    memcpy (cz->prev_prob, cz->prob, sizeof (float) * CZ_N_BINS * q);
    cz_log_array (cz->prob, CZ_N_BINS * q, nt);
    x = cz->prob;
    memcpy (cz->prev_in, cz->net_in, sizeof (float) * n);
    cz->have_prev = TRUE;
  } else {
    cz->have_prev = FALSE;      /* smoothing off: the past is not kept */
  }
  cz_annealed_mean (x, CZ_N_BINS, (int) q, p->temperature, cz_bins,
      p->saturation, cz->ab_small, nt);

  const gint64 t3 = g_get_monotonic_time ();
  cz_resample (cz->up_x, cz->up_y, 2, cz->ab_small, cz->ab_out, cz->tmp, nt);
  if (cz->L_out != cz->luma)
    cz_resample (cz->to_out_x, cz->to_out_y, 1, cz->luma, cz->L_out,
        cz->tmp, nt);
  *L = cz->L_out;
  *ab = cz->ab_out;
  const gint64 t4 = g_get_monotonic_time ();
  cz->timings = (CzTimings) {
  (t1 - t0) * 1e-6, (t2 - t1) * 1e-6, (t3 - t2) * 1e-6, (t4 - t3) * 1e-6, nt};
  cz_thread_choice_done (&cz->threads, nt, (t4 - t0) * 1e-6);
}
