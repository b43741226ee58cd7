/* Times the C engine's network forward pass on an L* input of WxH.
 *
 *   bench-net MODEL W H [RUNS] [THREADS] [im2col]
 *
 * Prints the median and minimum milliseconds of RUNS passes after two
 * warm-up passes, on a fixed test card; "im2col" turns Winograd off. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cz-model.h"
#include "cz-net.h"

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
    fprintf (stderr, "usage: bench-net MODEL W H [RUNS] [THREADS]\n");
    return 2;
  }
  const int w = atoi (argv[2]), h = atoi (argv[3]);
  const int runs = argc > 4 ? atoi (argv[4]) : 10;
  const int threads = argc > 5 ? atoi (argv[5]) : 2;
  GError *err = NULL;
  CzModel *m = cz_model_load (argv[1], &err);
  if (!m) {
    fprintf (stderr, "bench-net: %s\n", err->message);
    return 1;
  }
  CzNet *net = cz_net_new (m);
  const int im2col = argc > 6 && !strcmp (argv[6], "im2col");
  if (im2col)
    cz_net_disable_winograd (net);
  if (runs < 1 || !cz_net_prepare (net, h, w)) {
    fprintf (stderr, "bench-net: bad size or runs\n");
    return 1;
  }
  float *in = g_new (float, (size_t) w * h);
  for (int i = 0; i < w * h; i++)
    in[i] = (float) ((i * 37) % 100) - 50.0f;
  double *t = g_new (double, runs);
  for (int i = -2; i < runs; i++) {
    double t0 = now_ms ();
    cz_net_forward (net, in, threads);
    if (i >= 0)
      t[i] = now_ms () - t0;
  }
  qsort (t, runs, sizeof (double), cmp_double);
  printf ("c-engine %dx%d threads %d %s: median %.2f ms, min %.2f ms\n", w,
      h, threads, im2col ? "im2col" : "winograd", t[runs / 2], t[0]);
  g_free (t);
  g_free (in);
  cz_net_free (net);
  cz_model_free (m);
  return 0;
}
