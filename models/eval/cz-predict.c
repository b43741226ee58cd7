/* cz-predict: run the C engine on L* planes and write the predicted ab.
 *
 * The evaluation tool (evaluate.py) and the fidelity tests use it so that
 * what they measure is what the element computes, from the L* plane on.
 *
 *   cz-predict MODEL IN OUT [--net-size N] [--temperature T] [--threads N]
 *              [--backend auto|openblas|onednn] [--precision auto|fp32|bf16]
 *   cz-predict --dump-topology WIDTHS   the layer table for "c1,...,c8", JSON
 *
 * IN:  records of  int32 w, int32 h, float32 L[h][w]        (little-endian)
 * OUT: records of  int32 w, int32 h, float32 ab[2][h][w]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cz-colorizer.h"
#include "cz-model.h"

static int
usage (void)
{
  fprintf (stderr, "usage: cz-predict MODEL IN OUT [--net-size N] "
      "[--temperature T] [--threads N] [--backend auto|openblas|onednn] "
      "[--precision auto|fp32|bf16]\n"
      "       cz-predict --dump-topology C1,C2,...,C8\n");
  return 2;
}

/* The layer table (cz-topology.h) for the given widths, as JSON, for the
 * test that checks the Python side against it. */
static int
dump_topology (const char *widths_text)
{
  int widths[CZ_N_BLOCKS];
  gchar **parts = g_strsplit (widths_text, ",", -1);
  const gboolean ok = g_strv_length (parts) == CZ_N_BLOCKS;
  for (int i = 0; ok && i < CZ_N_BLOCKS; i++)
    widths[i] = atoi (parts[i]);
  g_strfreev (parts);
  if (!ok)
    return usage ();
  printf ("[\n");
  for (int i = 0; i < CZ_N_LAYERS; i++) {
    const CzLayer *l = &cz_layers[i];
    printf ("  {\"name\": \"%s\", \"kind\": \"%s\", \"in\": %d, \"out\": %d, "
        "\"k\": %d, \"stride\": %d, \"pad\": %d, \"dil\": %d, \"relu\": %d, "
        "\"bn\": %d}%s\n", l->name,
        l->kind == CZ_LAYER_DECONV ? "deconv" : "conv",
        cz_layer_channels (l->in, widths), cz_layer_channels (l->out, widths),
        l->k, l->stride, l->pad, l->dil, l->relu, l->bn,
        i + 1 < CZ_N_LAYERS ? "," : "");
  }
  printf ("]\n");
  return 0;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && !strcmp (argv[1], "--dump-topology"))
    return dump_topology (argv[2]);
  if (argc < 4)
    return usage ();
  int net_size = 0, threads = 0;
  float temperature = -1.0f;
  CzBackend backend = CZ_BACKEND_AUTO;
  CzPrecision precision = CZ_PRECISION_AUTO;
  for (int i = 4; i < argc; i++) {
    if (i + 1 >= argc)
      return usage ();
    if (!strcmp (argv[i], "--net-size"))
      net_size = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--temperature"))
      temperature = (float) atof (argv[++i]);
    else if (!strcmp (argv[i], "--threads"))
      threads = atoi (argv[++i]);
    else if (!strcmp (argv[i], "--backend")) {
      const char *b = argv[++i];
      backend = !strcmp (b, "openblas") ? CZ_BACKEND_OPENBLAS
          : !strcmp (b, "onednn") ? CZ_BACKEND_ONEDNN : CZ_BACKEND_AUTO;
      if (backend == CZ_BACKEND_AUTO && strcmp (b, "auto"))
        return usage ();
    } else if (!strcmp (argv[i], "--precision")) {
      const char *p = argv[++i];
      precision = !strcmp (p, "fp32") ? CZ_PRECISION_FP32
          : !strcmp (p, "bf16") ? CZ_PRECISION_BF16 : CZ_PRECISION_AUTO;
      if (precision == CZ_PRECISION_AUTO && strcmp (p, "auto"))
        return usage ();
    } else
      return usage ();
  }

  GError *err = NULL;
  CzModel *model = cz_model_load (argv[1], &err);
  if (!model) {
    fprintf (stderr, "cz-predict: %s\n", err->message);
    return 1;
  }
  FILE *in = fopen (argv[2], "rb"), *out = fopen (argv[3], "wb");
  if (!in || !out) {
    fprintf (stderr, "cz-predict: cannot open %s or %s\n", argv[2], argv[3]);
    return 1;
  }
  CzColorizer *cz = cz_colorizer_new_full (model, threads, backend,
      precision, &err);
  if (!cz) {
    fprintf (stderr, "cz-predict: %s\n", err->message);
    return 1;
  }
  fprintf (stderr, "cz-predict: %s\n", cz_colorizer_backend (cz));
  CzParams params = { temperature > 0 ? temperature : model->temperature,
    1.0f, 0.0f, 0.0f, 0.0f
  };
  int32_t dims[2];
  int status = 0, count = 0;
  while (fread (dims, sizeof dims, 1, in) == 1) {
    const int w = dims[0], h = dims[1];
    if (w <= 0 || h <= 0 || w > 16384 || h > 16384
        || !cz_colorizer_configure (cz, w, h, w, h, net_size, &err)) {
      fprintf (stderr, "cz-predict: record %d: bad size %dx%d%s%s\n", count,
          w, h, err ? ": " : "", err ? err->message : "");
      status = 1;
      break;
    }
    float *L = cz_colorizer_luma (cz);
    if (fread (L, sizeof (float), (size_t) w * h, in) != (size_t) w * h) {
      fprintf (stderr, "cz-predict: record %d truncated\n", count);
      status = 1;
      break;
    }
    const float *Lo, *ab;
    cz_colorizer_run (cz, &params, &Lo, &ab);
    if (fwrite (dims, sizeof dims, 1, out) != 1
        || fwrite (ab, sizeof (float), 2 * (size_t) w * h, out)
        != 2 * (size_t) w * h) {
      fprintf (stderr, "cz-predict: write failed\n");
      status = 1;
      break;
    }
    count++;
  }
  if (fclose (out) != 0)
    status = 1;
  fclose (in);
  cz_colorizer_free (cz);
  cz_model_free (model);
  return status;
}
