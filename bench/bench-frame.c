/* One frame's path through the engine, stage by stage, as the element runs
 * it for GRAY8 in and RGB out: luma read, resize to the net, the net,
 * softmax + annealed mean, ab resized to the frame, Lab -> RGB written.
 *
 *   bench-frame MODEL [W=640] [H=480] [FRAMES=50] [THREADS=2]
 *               [BACKEND=auto|openblas|onednn] [PRECISION=auto|fp32|bf16]
 *
 * Prints the median of each stage in ms and the frame outside the net. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cz-color.h"
#include "cz-colorizer.h"

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

static double
median (double *v, int n)
{
  qsort (v, n, sizeof (double), cmp_double);
  return v[n / 2];
}

int
main (int argc, char **argv)
{
  if (argc < 2) {
    fprintf (stderr, "usage: bench-frame MODEL [W] [H] [FRAMES] [THREADS] "
        "[auto|openblas|onednn] [auto|fp32|bf16]\n");
    return 2;
  }
  const int w = argc > 2 ? atoi (argv[2]) : 640;
  const int h = argc > 3 ? atoi (argv[3]) : 480;
  const int frames = argc > 4 ? atoi (argv[4]) : 50;
  const int threads = argc > 5 ? atoi (argv[5]) : 2;
  const char *b = argc > 6 ? argv[6] : "auto", *p = argc > 7 ? argv[7] : "auto";
  const CzBackend backend = !strcmp (b, "openblas") ? CZ_BACKEND_OPENBLAS
      : !strcmp (b, "onednn") ? CZ_BACKEND_ONEDNN : CZ_BACKEND_AUTO;
  const CzPrecision precision = !strcmp (p, "fp32") ? CZ_PRECISION_FP32
      : !strcmp (p, "bf16") ? CZ_PRECISION_BF16 : CZ_PRECISION_AUTO;
  GError *err = NULL;
  CzModel *m = cz_model_load (argv[1], &err);
  CzColorizer *cz = m ? cz_colorizer_new_full (m, threads, backend, precision,
      &err) : NULL;
  if (!cz || frames < 1 || !cz_colorizer_configure (cz, w, h, w, h, 0, &err)) {
    fprintf (stderr, "bench-frame: %s\n", err ? err->message : "bad frames");
    return 1;
  }
  guint8 *gray = g_malloc ((size_t) w * h), *rgb =
      g_malloc ((size_t) w * h * 3);
  for (int i = 0; i < w * h; i++)
    gray[i] = (guint8) ((i % w) * 200 / w + (i / w) * 40 / h + (i * 7) % 13);
  float table[256];
  cz_luma_table (table, FALSE);
  const CzRgbLayout rgb_layout = { 0, 1, 2, -1, 3 };
  const CzParams params = { m->temperature, 1.0f, 0.0f, 0.0f, 0.0f };
  enum
  { READ, TO_NET, NET, DECODE, TO_OUT, WRITE, OUTSIDE, TOTAL, N };
  static const char *names[N] = { "read luma", "resize to net", "net",
    "softmax+annealed mean", "ab to frame", "Lab -> RGB", "outside the net",
    "frame"
  };
  double *t[N];
  for (int k = 0; k < N; k++)
    t[k] = g_new (double, frames);
  for (int f = -3; f < frames; f++) {
    const int nt = cz_colorizer_n_threads (cz);
    const gint64 t0 = g_get_monotonic_time ();
    cz_read_luma8 (gray, w, 1, w, h, table, cz_colorizer_luma (cz), nt);
    const gint64 t1 = g_get_monotonic_time ();
    const float *L, *ab;
    cz_colorizer_run (cz, &params, &L, &ab);
    const gint64 t2 = g_get_monotonic_time ();
    cz_write_rgb8 (L, ab, w, h, rgb, 3 * w, &rgb_layout, TRUE, nt);
    const gint64 t3 = g_get_monotonic_time ();
    if (f < 0)
      continue;
    const CzTimings *ct = cz_colorizer_timings (cz);
    t[READ][f] = (t1 - t0) * 1e-3;
    t[TO_NET][f] = ct->to_net * 1e3;
    t[NET][f] = ct->net * 1e3;
    t[DECODE][f] = ct->decode * 1e3;
    t[TO_OUT][f] = ct->to_output * 1e3;
    t[WRITE][f] = (t3 - t2) * 1e-3;
    t[TOTAL][f] = (t3 - t0) * 1e-3;
    t[OUTSIDE][f] = t[TOTAL][f] - t[NET][f];
  }
  printf ("%dx%d GRAY8 -> RGB, %s, %d threads, median of %d frames (ms):\n",
      w, h, cz_colorizer_backend (cz), threads, frames);
  for (int k = 0; k < N; k++)
    printf ("  %-24s %7.3f\n", names[k], median (t[k], frames));
  for (int k = 0; k < N; k++)
    g_free (t[k]);
  g_free (gray);
  g_free (rgb);
  cz_colorizer_free (cz);
  cz_model_free (m);
  return 0;
}
