/* Times the C engine's network forward pass on an L* input of WxH.
 *
 *   bench-net MODEL W H [RUNS] [THREADS] [BACKEND]
 *
 * BACKEND: openblas (default: im2col / Winograd + OpenBLAS), im2col
 * (Winograd off), onednn-fp32, onednn-bf16, onednn-bf16-direct (its Winograd
 * layers off).  Prints the median and minimum
 * milliseconds of RUNS passes after two warm-up passes, on a fixed test
 * card.  With CHECK (a 7th argument "check"), the oneDNN ones also print
 * their largest |logit| difference from the OpenBLAS path on the same input;
 * without it only the backend measured is ever built, so that the process's
 * peak memory is that backend's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cz-model.h"
#include "cz-net.h"
#ifdef CZ_HAVE_DNNL
#include "cz-dnnl.h"
#endif

static double
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int
cmp_double (const void *a, const void *b)
{
  double x = *(const double *) a, y = *(const double *) b;
  return (x > y) - (x < y);
}

int
main (int argc, char **argv)
{
  if (argc < 4) {
    fprintf (stderr, "usage: bench-net MODEL W H [RUNS] [THREADS] "
        "[openblas|im2col|onednn-fp32|onednn-bf16|onednn-bf16-direct] [check]\n");
    return 2;
  }
  const int w = atoi (argv[2]), h = atoi (argv[3]);
  const int runs = argc > 4 ? atoi (argv[4]) : 10;
  const int threads = argc > 5 ? atoi (argv[5]) : 2;
  const char *backend = argc > 6 ? argv[6] : "openblas";
  if (w <= 0 || h <= 0 || w % 8 || h % 8) {
    /* the net halves its input three times; the element pads to this */
    fprintf (stderr, "bench-net: W and H must be positive multiples of 8\n");
    return 2;
  }
  GError *err = NULL;
  CzModel *m = cz_model_load (argv[1], &err);
  if (!m) {
    fprintf (stderr, "bench-net: %s\n", err->message);
    return 1;
  }
  const int dnnl = !strncmp (backend, "onednn", 6);
  const int check = argc > 7 && !strcmp (argv[7], "check");
  CzNet *net = NULL;
  if (!dnnl || check) {
    net = cz_net_new (m);
    if (!strcmp (backend, "im2col"))
      cz_net_disable_winograd (net);
    if (!cz_net_prepare (net, h, w)) {
      fprintf (stderr, "bench-net: bad size\n");
      return 1;
    }
  }
  if (runs < 1) {
    fprintf (stderr, "bench-net: bad runs\n");
    return 1;
  }
  float *in = g_new (float, (size_t) w * h);
  for (int i = 0; i < w * h; i++)
    in[i] = (float) ((i * 37) % 100) - 50.0f;
  const size_t nq = (size_t) CZ_N_BINS * (h / 4) * (w / 4);
  const float *(*forward) (void *, const float *, int) =
      (const float *(*)(void *, const float *, int)) cz_net_forward;
  void *impl = net;
  float *ref = NULL;
#ifdef CZ_HAVE_DNNL
  CzDnnlNet *dn = NULL;
  if (dnnl) {
    dn = cz_dnnl_net_new (m, !strncmp (backend, "onednn-bf16", 11), &err);
    if (dn && !strcmp (backend, "onednn-bf16-direct"))
      cz_dnnl_net_set_winograd (dn, FALSE);
    if (!dn || !cz_dnnl_net_prepare (dn, h, w, threads, &err)) {
      fprintf (stderr, "bench-net: %s\n", err->message);
      return 1;
    }
    if (check) {
      ref = g_memdup2 (cz_net_forward (net, in, threads), sizeof (float) * nq);
      cz_net_free (net);
      net = NULL;
    }
    forward = (const float *(*)(void *, const float *, int))
        cz_dnnl_net_forward;
    impl = dn;
  }
#endif
  double *t = g_new (double, runs);
  const float *out = NULL;
  for (int i = -2; i < runs; i++) {
    double t0 = now_ms ();
    out = forward (impl, in, threads);
    if (i >= 0)
      t[i] = now_ms () - t0;
  }
  qsort (t, runs, sizeof (double), cmp_double);
  printf ("c-engine %dx%d threads %d %s: median %.2f ms, min %.2f ms", w, h,
      threads, backend, t[runs / 2], t[0]);
  if (ref) {
    double diff = 0.0;
    for (size_t i = 0; i < nq; i++)
      diff = fmax (diff, fabs ((double) out[i] - ref[i]));
    printf (", max |logit - openblas| %.4f", diff);
  }
  printf ("\n");
#ifdef CZ_HAVE_DNNL
  if (dn)
    fprintf (stderr, "%s\n", cz_dnnl_net_describe (dn));
  cz_dnnl_net_free (dn);
#endif
  g_free (ref);
  g_free (t);
  g_free (in);
  cz_net_free (net);
  cz_model_free (m);
  return 0;
}
