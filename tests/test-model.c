/* The model loader on the real shipped model, and on handcrafted broken
 * files made from it: each must be rejected with an error that names the
 * problem, never a crash. */
#define _POSIX_C_SOURCE 200809L /* mkfifo */

#include <math.h>
#include <string.h>

#include <sys/stat.h>

#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "cz-colorizer.h"
#include "cz-net.h"
#include "cz-model.h"
#ifdef CZ_HAVE_DNNL
#include "cz-dnnl.h"
#endif

static guint8 *model_bytes;
static gsize model_size;

/* The shipped model split into its JSON header (parsed) and data. */
typedef struct
{
  JsonNode *root;
  const guint8 *data;
  gsize data_size;
} Parts;

static Parts
split_model (void)
{
  guint64 n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | model_bytes[i];
  Parts p;
  gchar *text = g_strndup ((const char *) model_bytes + 8, n);
  p.root = json_from_string (text, NULL);
  g_free (text);
  g_assert_nonnull (p.root);
  p.data = model_bytes + 8 + n;
  p.data_size = model_size - 8 - n;
  return p;
}

/* A file from a header object and data bytes. */
static GBytes *
join_model (JsonNode * root, const guint8 * data, gsize data_size)
{
  gchar *json = json_to_string (root, FALSE);
  const gsize n = strlen (json);
  GByteArray *out = g_byte_array_new ();
  guint8 len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (guint8) (((guint64) n >> (8 * i)) & 0xff);
  g_byte_array_append (out, len, 8);
  g_byte_array_append (out, (const guint8 *) json, n);
  g_byte_array_append (out, data, data_size);
  g_free (json);
  return g_byte_array_free_to_bytes (out);
}

static void
expect_error (GBytes * bytes, CzModelError code, const char *fragment)
{
  GError *err = NULL;
  gsize size;
  const guint8 *data = g_bytes_get_data (bytes, &size);
  CzModel *m = cz_model_load_bytes (data, size, "broken.safetensors", &err);
  g_assert_null (m);
  g_assert_error (err, CZ_MODEL_ERROR, (gint) code);
  if (!strstr (err->message, fragment) || !strstr (err->message,
          "broken.safetensors"))
    g_error ("message \"%s\" lacks \"%s\" or the file name", err->message,
        fragment);
  g_error_free (err);
  g_bytes_unref (bytes);
}

static JsonObject *
entry (JsonNode * root, const char *name)
{
  return json_object_get_object_member (json_node_get_object (root), name);
}

static void
test_loads_shipped_model (void)
{
  GError *err = NULL;
  CzModel *m = cz_model_load (g_getenv ("CZ_MODEL"), &err);
  g_assert_no_error (err);
  g_assert_nonnull (m);
  g_assert_cmpint (m->net_size % 8, ==, 0);
  g_assert_cmpint (m->widths[0], >, 0);
  g_assert_cmpfloat (m->temperature, >, 0.0);
  g_assert_cmpuint (g_hash_table_size (m->tensors), ==, 2 * 23 + 4 * 7);
  cz_model_free (m);
}

static void
test_missing_file (void)
{
  GError *err = NULL;
  g_assert_null (cz_model_load ("/nonexistent/model.safetensors", &err));
  g_assert_error (err, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO);
  g_assert_nonnull (strstr (err->message, "/nonexistent/model.safetensors"));
  g_error_free (err);
}

static void
test_bad_header_length (void)
{
  expect_error (g_bytes_new ("", 0), CZ_MODEL_ERROR_FORMAT, "too short");
  expect_error (g_bytes_new ("\x10\0\0\0", 4), CZ_MODEL_ERROR_FORMAT,
      "too short");
  guint8 *copy = g_memdup2 (model_bytes, model_size);
  memset (copy, 0xff, 8);       /* 2^64 - 1 */
  expect_error (g_bytes_new_take (copy, model_size), CZ_MODEL_ERROR_FORMAT,
      "header length");
  copy = g_memdup2 (model_bytes, model_size);
  guint64 n = model_size;       /* one past the end */
  for (int i = 0; i < 8; i++)
    copy[i] = (guint8) (n >> (8 * i));
  expect_error (g_bytes_new_take (copy, model_size), CZ_MODEL_ERROR_FORMAT,
      "header length");
}

static void
test_bad_json (void)
{
  guint8 *copy = g_memdup2 (model_bytes, model_size);
  copy[8] = '[';
  expect_error (g_bytes_new_take (copy, model_size), CZ_MODEL_ERROR_FORMAT,
      "JSON");
  Parts p = split_model ();
  JsonNode *arr = json_from_string ("[1, 2, 3]", NULL);
  expect_error (join_model (arr, p.data, p.data_size), CZ_MODEL_ERROR_FORMAT,
      "not a JSON object");
  json_node_unref (arr);
  json_node_unref (p.root);
}

static void
test_bad_metadata (void)
{
  static const struct
  {
    const char *key, *value, *fragment;
  } cases[] = {
    {"topology", "siggraph17", "topology"},
    {"input", "(L-50)/100", "input convention"},
    {"widths", "16,32,64", "widths"},
    {"widths", "16,32,64,128,128,128,128,x", "widths"},
    {"widths", "16,32,64,128,128,128,128,0", "widths"},
    {"net_size", "130", "net_size"},
    {"net_size", "-8", "net_size"},
    {"temperature", "nan", "temperature"},
    {"temperature", "0", "temperature"},
    {"bn_eps", "-1", "bn_eps"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    Parts p = split_model ();
    JsonObject *md = entry (p.root, "__metadata__");
    json_object_set_string_member (md, cases[i].key, cases[i].value);
    expect_error (join_model (p.root, p.data, p.data_size),
        CZ_MODEL_ERROR_METADATA, cases[i].fragment);
    json_node_unref (p.root);
  }
  Parts p = split_model ();
  json_object_remove_member (json_node_get_object (p.root), "__metadata__");
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_METADATA, "__metadata__");
  json_node_unref (p.root);
  p = split_model ();
  json_object_set_int_member (entry (p.root, "__metadata__"), "net_size", 128);
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_METADATA, "not a string");
  json_node_unref (p.root);
}

static void
test_bad_tensors (void)
{
  Parts p;

  p = split_model ();           /* wrong dtype */
  json_object_set_string_member (entry (p.root, "conv3_2.weight"), "dtype",
      "I32");
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "dtype I32");
  json_node_unref (p.root);

  p = split_model ();           /* wrong shape */
  JsonArray *shape = json_object_get_array_member (entry (p.root,
          "conv2_1.weight"), "shape");
  json_array_remove_element (shape, 3);
  json_array_add_int_element (shape, 5);
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "conv2_1.weight has the wrong shape");
  json_node_unref (p.root);

  p = split_model ();           /* missing tensor */
  json_object_remove_member (json_node_get_object (p.root), "bn4.var");
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "bn4.var is missing");
  json_node_unref (p.root);

  p = split_model ();           /* extra tensor */
  JsonNode *copy = json_node_copy (json_object_get_member
      (json_node_get_object (p.root), "conv8_313.bias"));
  json_object_set_member (json_node_get_object (p.root), "class8_ab.weight",
      copy);
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "unexpected tensor class8_ab.weight");
  json_node_unref (p.root);

  p = split_model ();           /* truncated data */
  expect_error (join_model (p.root, p.data, p.data_size / 2),
      CZ_MODEL_ERROR_TENSOR, "truncated");
  json_node_unref (p.root);

  p = split_model ();           /* offsets reversed */
  JsonArray *off = json_object_get_array_member (entry (p.root,
          "conv1_1.bias"), "data_offsets");
  gint64 b = json_array_get_int_element (off, 0);
  gint64 e = json_array_get_int_element (off, 1);
  json_array_remove_element (off, 1);
  json_array_remove_element (off, 0);
  json_array_add_int_element (off, e);
  json_array_add_int_element (off, b);
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "conv1_1.bias has data offsets");
  json_node_unref (p.root);

  p = split_model ();           /* offsets span the wrong byte count */
  off = json_object_get_array_member (entry (p.root, "conv1_1.bias"),
      "data_offsets");
  b = json_array_get_int_element (off, 0);
  json_array_remove_element (off, 1);
  json_array_add_int_element (off, b + 2);
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "conv1_1.bias spans 2 bytes");
  json_node_unref (p.root);

  p = split_model ();           /* a shape entry that is not an integer */
  shape = json_object_get_array_member (entry (p.root, "bn1.mean"), "shape");
  json_array_remove_element (shape, 0);
  json_array_add_string_element (shape, "16");
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "bn1.mean has the wrong shape");
  json_node_unref (p.root);
}

static void
test_bad_values (void)
{
  Parts p = split_model ();
  JsonObject *var = entry (p.root, "bn2.var");
  JsonArray *off = json_object_get_array_member (var, "data_offsets");
  const gint64 at = json_array_get_int_element (off, 0);
  const gboolean f16 = !g_strcmp0 (json_object_get_string_member (var,
          "dtype"), "F16");
  guint8 *data = g_memdup2 (p.data, p.data_size);

  /* a negative variance */
  if (f16)
    data[at + 1] |= 0x80;
  else
    data[at + 3] |= 0x80;
  expect_error (join_model (p.root, data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "negative variance");
  /* NaN */
  if (f16) {
    data[at] = 0x01;
    data[at + 1] = 0x7e;
  } else {
    data[at] = 0x01;
    data[at + 1] = 0x00;
    data[at + 2] = 0xc0;
    data[at + 3] = 0x7f;
  }
  expect_error (join_model (p.root, data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "non-finite");
  g_free (data);
  json_node_unref (p.root);
}

/* Every prefix of the file (at 97 spread lengths) and random byte flips in
 * the header: each load either fails cleanly or, for harmless flips,
 * succeeds; nothing crashes. */
static void
test_truncations_and_flips (void)
{
  for (int i = 0; i < 97; i++) {
    gsize len = (gsize) ((double) model_size * i / 97.0);
    GError *err = NULL;
    CzModel *m = cz_model_load_bytes (model_bytes, len, "prefix", &err);
    g_assert_null (m);
    g_assert_nonnull (err);
    g_error_free (err);
  }
  Parts p = split_model ();
  const gsize header = model_size - p.data_size;
  json_node_unref (p.root);
  GRand *rng = g_rand_new_with_seed (1234);
  guint8 *copy = g_memdup2 (model_bytes, model_size);
  for (int i = 0; i < 2000; i++) {
    gsize at = g_rand_int_range (rng, 0, (gint32) header);
    guint8 old = copy[at];
    copy[at] = (guint8) g_rand_int_range (rng, 0, 256);
    GError *err = NULL;
    CzModel *m = cz_model_load_bytes (copy, model_size, "flip", &err);
    g_assert_true ((m == NULL) != (err == NULL));
    cz_model_free (m);
    g_clear_error (&err);
    copy[at] = old;
  }
  g_free (copy);
  g_rand_free (rng);
}

/* A file of a raw header text and the shipped data. */
static GBytes *
raw_model (const char *header, const guint8 * data, gsize data_size)
{
  GByteArray *out = g_byte_array_new ();
  const guint64 n = strlen (header);
  guint8 len[8];
  for (int i = 0; i < 8; i++)
    len[i] = (guint8) (n >> (8 * i));
  g_byte_array_append (out, len, 8);
  g_byte_array_append (out, (const guint8 *) header, n);
  g_byte_array_append (out, data, data_size);
  return g_byte_array_free_to_bytes (out);
}

/* Headers that are valid JSON but hostile: nested 100,000 deep (json-glib
 * recurses, and a 200 KB file overflowed the stack), larger than any model
 * needs, or with more entries than the topology has. */
static void
test_hostile_headers (void)
{
  const int depth = 100000;
  GString *deep = g_string_new ("{\"a\":");
  for (int i = 0; i < depth; i++)
    g_string_append_c (deep, '[');
  for (int i = 0; i < depth; i++)
    g_string_append_c (deep, ']');
  g_string_append_c (deep, '}');
  expect_error (raw_model (deep->str, NULL, 0), CZ_MODEL_ERROR_FORMAT,
      "nested");
  g_string_free (deep, TRUE);

  deep = g_string_new ("{\"__metadata__\":{\"x\":\"[[[[[[[[[[[[\"},\"b\":");
  for (int i = 0; i < 3; i++)   /* brackets inside strings do not count */
    g_string_append_c (deep, '[');
  g_string_append (deep, "1]]]}");
  expect_error (raw_model (deep->str, NULL, 0), CZ_MODEL_ERROR_METADATA,
      "topology");
  g_string_free (deep, TRUE);

  GString *big = g_string_new ("{\"__metadata__\":{\"x\":\"");
  while (big->len < CZ_MAX_HEADER + 16)
    g_string_append (big, "0123456789abcdef");
  g_string_append (big, "\"}}");
  expect_error (raw_model (big->str, NULL, 0), CZ_MODEL_ERROR_FORMAT,
      "header length");
  g_string_free (big, TRUE);

  /* text before or after the one object: json-glib 1.6 leaked the values
   * it had parsed when a second object or array followed the first value
   * (found by the fuzzer: "1{...}") */
  const char *not_one[] = { "1{\"a\":{\"b\":1}}", "{\"a\":{\"b\":1}}{\"c\":{}}",
    "[{\"a\":1}]{\"b\":{}}", "\"s\"{\"b\":{}}", " {\"a\":1}} ", "{\"a\":1}2",
    "1[{\"a\":{\"b\":1}}]", "", "   "
  };
  const char *want[] = { "not a JSON object", "after its JSON object",
    "not a JSON object", "not a JSON object", "after its JSON object",
    "after its JSON object", "not a JSON object", "header length",
    "not a JSON object"
  };
  for (guint i = 0; i < G_N_ELEMENTS (not_one); i++)
    expect_error (raw_model (not_one[i], NULL, 0), CZ_MODEL_ERROR_FORMAT,
        want[i]);

  GString *many = g_string_new ("{");
  for (int i = 0; i <= CZ_MAX_ENTRIES; i++)
    g_string_append_printf (many, "%s\"t%d\":{}", i ? "," : "", i);
  g_string_append_c (many, '}');
  expect_error (raw_model (many->str, NULL, 0), CZ_MODEL_ERROR_FORMAT,
      "entries");
  g_string_free (many, TRUE);
}

/* Every data byte belongs to exactly one tensor: a name given twice (JSON
 * parsers keep one of them silently), a key given twice inside an entry,
 * overlapping ranges and bytes after the last tensor are all refused. */
static void
test_names_and_ranges (void)
{
  Parts p = split_model ();
  gchar *json = json_to_string (p.root, FALSE);
  g_assert_true (json[strlen (json) - 1] == '}');

  /* conv1_1.bias again, pointing at conv1_2.bias's bytes */
  JsonNode *e = json_object_get_member (json_node_get_object (p.root),
      "conv1_2.bias");
  gchar *entry_json = json_to_string (e, FALSE);
  gchar *twice = g_strdup_printf ("%.*s,\"conv1_1.bias\":%s}",
      (int) strlen (json) - 1, json, entry_json);
  expect_error (raw_model (twice, p.data, p.data_size),
      CZ_MODEL_ERROR_FORMAT, "\"conv1_1.bias\" twice");
  g_free (twice);

  /* a key twice inside one entry */
  const gchar *key = "\"conv2_1.bias\":{";
  gchar *at = strstr (json, key);
  g_assert_nonnull (at);
  GString *s = g_string_new_len (json, at - json + strlen (key));
  g_string_append (s, "\"dtype\":\"F32\",");
  g_string_append (s, at + strlen (key));
  expect_error (raw_model (s->str, p.data, p.data_size),
      CZ_MODEL_ERROR_FORMAT, "\"dtype\" twice");
  g_string_free (s, TRUE);

  /* trailing bytes */
  guint8 *more = g_malloc0 (p.data_size + 4);
  memcpy (more, p.data, p.data_size);
  expect_error (join_model (p.root, more, p.data_size + 4),
      CZ_MODEL_ERROR_TENSOR, "4 bytes after the last tensor");
  g_free (more);

  /* conv1_2.bias on conv1_1.bias's bytes, the file's size kept by the gap
   * left behind */
  JsonArray *off = json_object_get_array_member (entry (p.root,
          "conv1_2.bias"), "data_offsets");
  JsonArray *src = json_object_get_array_member (entry (p.root,
          "conv1_1.bias"), "data_offsets");
  const gint64 b = json_array_get_int_element (src, 0);
  const gint64 end = json_array_get_int_element (src, 1);
  json_array_remove_element (off, 1);
  json_array_remove_element (off, 0);
  json_array_add_int_element (off, b);
  json_array_add_int_element (off, end);
  expect_error (join_model (p.root, p.data, p.data_size),
      CZ_MODEL_ERROR_TENSOR, "overlap");

  g_free (entry_json);
  g_free (json);
  json_node_unref (p.root);
}

/* Only regular files are opened: a FIFO would block the state change for
 * ever waiting for a writer; a directory is no model either. */
static void
test_not_a_regular_file (void)
{
  gchar *dir = g_dir_make_tmp ("cz-model-XXXXXX", NULL);
  gchar *fifo = g_build_filename (dir, "model.safetensors", NULL);
  g_assert_cmpint (mkfifo (fifo, 0600), ==, 0);
  const gchar *paths[] = { fifo, dir };
  for (guint i = 0; i < G_N_ELEMENTS (paths); i++) {
    GError *err = NULL;
    g_assert_null (cz_model_load (paths[i], &err));
    g_assert_error (err, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO);
    g_assert_nonnull (strstr (err->message, "not a regular file"));
    g_assert_nonnull (strstr (err->message, paths[i]));
    g_error_free (err);
  }
  g_unlink (fifo);
  g_rmdir (dir);
  g_free (fifo);
  g_free (dir);
}

/* The fuzzer's seeds (tests/fuzz/corpus) are valid models: the fuzzer
 * starts from files that load and mutates them into ones that must not. */
static void
test_fuzz_seeds_load (void)
{
  const gchar *dir = g_getenv ("CZ_FUZZ_CORPUS");
  g_assert_nonnull (dir);
  GDir *d = g_dir_open (dir, 0, NULL);
  g_assert_nonnull (d);
  const gchar *name;
  int n = 0;
  while ((name = g_dir_read_name (d))) {
    gchar *path = g_build_filename (dir, name, NULL);
    GError *err = NULL;
    CzModel *m = cz_model_load (path, &err);
    g_assert_no_error (err);
    cz_model_free (m);
    g_free (path);
    n++;
  }
  g_dir_close (d);
  g_assert_cmpint (n, >=, 2);
}

/* F32 and F16 files of the same weights give the same colours. */
static void
test_f32_matches_f16 (void)
{
  Parts p = split_model ();
  JsonObject *root = json_node_get_object (p.root);
  GByteArray *data = g_byte_array_new ();
  GList *names = json_object_get_members (root);
  gboolean any_f16 = FALSE;
  for (GList * l = names; l; l = l->next) {
    if (!strcmp (l->data, "__metadata__"))
      continue;
    JsonObject *e = json_object_get_object_member (root, l->data);
    JsonArray *off = json_object_get_array_member (e, "data_offsets");
    gint64 b = json_array_get_int_element (off, 0);
    gint64 end = json_array_get_int_element (off, 1);
    const gboolean f16 = !g_strcmp0 (json_object_get_string_member (e,
            "dtype"), "F16");
    any_f16 |= f16;
    gint64 start = data->len;
    for (gint64 k = b; k < end; k += f16 ? 2 : 4) {
      float f;
      if (f16) {
        /* IEEE half -> float, written out independently of the loader */
        guint16 h = (guint16) (p.data[k] | p.data[k + 1] << 8);
        guint32 sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f;
        guint32 man = h & 0x3ff, bits;
        if (exp == 0 && man == 0)
          bits = sign;
        else if (exp == 0) {
          f = ldexpf ((float) man, -24);
          memcpy (&bits, &f, 4);
          bits |= sign;
        } else
          bits = sign | ((exp + 112) << 23) | (man << 13);
        memcpy (&f, &bits, 4);
      } else {
        memcpy (&f, p.data + k, 4);
      }
      g_byte_array_append (data, (const guint8 *) &f, 4);
    }
    json_object_set_string_member (e, "dtype", "F32");
    json_array_remove_element (off, 1);
    json_array_remove_element (off, 0);
    json_array_add_int_element (off, start);
    json_array_add_int_element (off, data->len);
  }
  g_list_free (names);
  g_assert_true (any_f16);      /* the shipped model is fp16 */
  GBytes *f32 = join_model (p.root, data->data, data->len);
  gsize size;
  const guint8 *bytes = g_bytes_get_data (f32, &size);
  GError *err = NULL;
  CzModel *a = cz_model_load_bytes (model_bytes, model_size, "f16", &err);
  g_assert_no_error (err);
  CzModel *b = cz_model_load_bytes (bytes, size, "f32", &err);
  g_assert_no_error (err);

  /* same output on a test card, same thread count: bit-identical */
  const int w = 37, h = 23;
  CzParams params = { 0.38f, 1.0f, 0.0f, 0.0f, 0.0f };
  CzColorizer *ca = cz_colorizer_new (a, 2), *cb = cz_colorizer_new (b, 2);
  g_assert_true (cz_colorizer_configure (ca, w, h, w, h, 0, NULL));
  g_assert_true (cz_colorizer_configure (cb, w, h, w, h, 0, NULL));
  for (int i = 0; i < w * h; i++)
    cz_colorizer_luma (ca)[i] = cz_colorizer_luma (cb)[i] =
        (float) (50.0 + 40.0 * sin (i * 0.05));
  const float *La, *aba, *Lb, *abb;
  cz_colorizer_run (ca, &params, &La, &aba);
  cz_colorizer_run (cb, &params, &Lb, &abb);
  g_assert_cmpmem (aba, sizeof (float) * 2 * w * h, abb,
      sizeof (float) * 2 * w * h);
  cz_colorizer_free (ca);
  cz_colorizer_free (cb);
  cz_model_free (a);
  cz_model_free (b);
  g_bytes_unref (f32);
  g_byte_array_unref (data);
  json_node_unref (p.root);
}

/* ab of the shipped model on a smooth test card (odd size, 4:3-ish), at
 * the model's own temperature, as the element runs it. */
static float *
colour_card (const CzModel * m, CzBackend backend, CzPrecision precision,
    int threads, int w, int h)
{
  GError *err = NULL;
  CzColorizer *cz = cz_colorizer_new_full (m, threads, backend, precision,
      &err);
  g_assert_no_error (err);
  g_assert_true (cz_colorizer_configure (cz, w, h, w, h, 0, &err));
  for (int i = 0; i < w * h; i++)
    cz_colorizer_luma (cz)[i] = (float) (50.0 + 35.0 * sin (i % w * 0.05)
        * cos (i / w * 0.07) + 10.0 * sin (i * 0.9));
  const CzParams params = { m->temperature, 1.0f, 0.0f, 0.0f, 0.0f };
  const float *L, *ab;
  /* two frames: the second runs on the thread count the first chose */
  cz_colorizer_run (cz, &params, &L, &ab);
  cz_colorizer_run (cz, &params, &L, &ab);
  float *out = g_memdup2 (ab, sizeof (float) * 2 * w * h);
  cz_colorizer_free (cz);
  return out;
}

/* The oneDNN backend against the OpenBLAS reference: fp32 within 0.05 in
 * ab; bf16 close on average (refused where oneDNN has none); each the same
 * bytes on 1, 2 and 3 threads. */
static void
test_backends_agree (void)
{
  if (!cz_backend_available (CZ_BACKEND_ONEDNN)) {
    g_test_skip ("built without oneDNN");
    return;
  }
  CzModel *m = cz_model_load_bytes (model_bytes, model_size, "model", NULL);
  const int w = 161, h = 119, n = 2 * w * h;
  float *ref = colour_card (m, CZ_BACKEND_OPENBLAS, CZ_PRECISION_FP32, 2, w,
      h);
  static const CzPrecision precisions[] = { CZ_PRECISION_FP32,
    CZ_PRECISION_BF16
  };
  for (guint p = 0; p < G_N_ELEMENTS (precisions); p++) {
#ifdef CZ_HAVE_DNNL
    if (precisions[p] == CZ_PRECISION_BF16 && !cz_dnnl_bf16_available ()) {
      /* a CPU oneDNN has no bf16 for (AVX2): refused at the start, saying
       * why, not failed on every frame */
      GError *err = NULL;
      g_assert_null (cz_colorizer_new_full (m, 2, CZ_BACKEND_ONEDNN,
              CZ_PRECISION_BF16, &err));
      g_assert_error (err, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_BACKEND);
      g_assert_nonnull (strstr (err->message, "cannot compute bf16"));
      g_test_message ("oneDNN bf16: refused here: %s", err->message);
      g_error_free (err);
      continue;
    }
#endif
    float *a[3];
    for (int t = 0; t < 3; t++)
      a[t] = colour_card (m, CZ_BACKEND_ONEDNN, precisions[p], t + 1, w, h);
    double max_diff = 0.0, sum = 0.0;
    for (int i = 0; i < n; i++) {
      const double d = fabs ((double) a[0][i] - ref[i]);
      max_diff = fmax (max_diff, d);
      sum += d;
    }
    g_test_message ("oneDNN %s: max |ab - openblas| %g, mean %g",
        p ? "bf16" : "fp32", max_diff, sum / n);
    if (p == 0)
      g_assert_cmpfloat (max_diff, <=, 0.05);
    else
      g_assert_cmpfloat (sum / n, <=, 0.15);
    for (int t = 1; t < 3; t++)
      g_assert_cmpmem (a[0], sizeof (float) * n, a[t], sizeof (float) * n);
    for (int t = 0; t < 3; t++)
      g_free (a[t]);
  }
  g_free (ref);
  cz_model_free (m);
}

#ifdef CZ_HAVE_DNNL
/* The shipped net's logits on oneDNN (its Winograd layers on or off), on 2
 * threads. */
static float *
dnnl_logits (const CzModel * m, gboolean bf16, gboolean winograd,
    const float *in, int h, int w, char **describe)
{
  GError *err = NULL;
  CzDnnlNet *n = cz_dnnl_net_new (m, bf16, &err);
  g_assert_no_error (err);
  cz_dnnl_net_set_winograd (n, winograd);
  g_assert_true (cz_dnnl_net_prepare (n, h, w, 2, &err));
  g_assert_no_error (err);
  float *out = g_memdup2 (cz_dnnl_net_forward (n, in, 2),
      sizeof (float) * CZ_N_BINS * (h / 4) * (w / 4));
  *describe = g_strdup (cz_dnnl_net_describe (n));
  cz_dnnl_net_free (n);
  return out;
}
#endif

/* An h x w L* - 50 plane of slow and fast waves: the nets' test input. */
static float *
wavy_plane (int h, int w)
{
  float *in = g_new (float, h * w);
  for (int i = 0; i < h * w; i++)
    in[i] = (float) (40.0 * sin (i * 0.013) + 10.0 * cos (i * 0.7));
  return in;
}

/* What backend=auto takes: oneDNN for the default model; for a net as wide
 * as the paper's, OpenBLAS where oneDNN would compute in fp32 (its
 * Winograd layers are faster there than oneDNN's direct convolutions: on
 * an AVX2 Zen 3, 379 against 597 ms at 224x224 on 2 threads), oneDNN in
 * bf16. */
static void
test_auto_backend (void)
{
  CzModel *m = cz_model_load_bytes (model_bytes, model_size, "model", NULL);
  const CzBackend dnnl = cz_backend_available (CZ_BACKEND_ONEDNN) ?
      CZ_BACKEND_ONEDNN : CZ_BACKEND_OPENBLAS;
  for (int p = CZ_PRECISION_AUTO; p <= CZ_PRECISION_BF16; p++)
    g_assert_cmpint (cz_backend_auto (m, p), ==, dnnl);
  CzModel wide = *m;            /* the widths alone: nothing is computed */
  for (int b = 0; b < CZ_N_BLOCKS; b++)
    wide.widths[b] = 4 * m->widths[b];
  g_assert_cmpint (cz_backend_auto (&wide, CZ_PRECISION_FP32), ==,
      CZ_BACKEND_OPENBLAS);
  g_assert_cmpint (cz_backend_auto (&wide, CZ_PRECISION_BF16), ==, dnnl);
#ifdef CZ_HAVE_DNNL
  g_assert_cmpint (cz_backend_auto (&wide, CZ_PRECISION_AUTO), ==,
      cz_dnnl_bf16_native ()? CZ_BACKEND_ONEDNN : CZ_BACKEND_OPENBLAS);
#endif
  for (int b = 0; b < CZ_N_BLOCKS; b++)
    wide.widths[b] = 2 * m->widths[b];  /* half the paper's: oneDNN */
  g_assert_cmpint (cz_backend_auto (&wide, CZ_PRECISION_FP32), ==, dnnl);
  cz_model_free (m);
}

/* Every layer of the oneDNN net, fp32 and (where the CPU has it) bf16, at
 * two sizes, runs a JIT kernel of this CPU, none oneDNN's reference code:
 * on an AVX2 CPU (AMD Zen 3) the layouts forced for the AVX-512 vector
 * (nChw16c) left the four layers from the transposed conv on ref:any, the
 * net 3.9 s a 320x240 frame against OpenBLAS's 0.07. */
static void
test_dnnl_no_reference_code (void)
{
#ifdef CZ_HAVE_DNNL
  CzModel *m = cz_model_load_bytes (model_bytes, model_size, "model", NULL);
  static const int sizes[][2] = { {128, 168}, {120, 160} };
  for (int bf16 = 0; bf16 < 2; bf16++) {
    if (bf16 && !cz_dnnl_bf16_available ())
      continue;
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
      const int h = sizes[s][0], w = sizes[s][1];
      float *in = wavy_plane (h, w);
      char *d;
      g_free (dnnl_logits (m, bf16, TRUE, in, h, w, &d));
      g_test_message ("%s %dx%d: %s", bf16 ? "bf16" : "fp32", w, h, d);
      g_assert_null (strstr (d, "ref"));
      g_free (d);
      g_free (in);
    }
  }
  cz_model_free (m);
#else
  g_test_skip ("built without oneDNN");
#endif
}

/* oneDNN's bf16 Winograd layers against its direct bf16 convolutions on
 * the shipped weights, both against fp32: Winograd is used at this size
 * and moves the logits no more than 3x as far as direct bf16 does (it
 * rounds the transformed input to bf16 too: measured 2.4x at the largest
 * logit, 1.7x on average; a wrong transform or chunk gives 100x). */
static void
test_dnnl_winograd_matches_direct (void)
{
#ifdef CZ_HAVE_DNNL
  if (!cz_dnnl_bf16_native ()) {
    g_test_skip ("this CPU does not compute bf16 natively: no Winograd");
    return;
  }
  CzModel *m = cz_model_load_bytes (model_bytes, model_size, "model", NULL);
  const int h = 392, w = 536;   /* conv2_1: 3 chunks, the last short */
  const size_t n = (size_t) CZ_N_BINS * (h / 4) * (w / 4);
  float *in = wavy_plane (h, w);
  char *d_ref, *d_direct, *d_wino;
  float *ref = dnnl_logits (m, FALSE, TRUE, in, h, w, &d_ref);
  float *direct = dnnl_logits (m, TRUE, FALSE, in, h, w, &d_direct);
  float *wino = dnnl_logits (m, TRUE, TRUE, in, h, w, &d_wino);
  g_assert_null (strstr (d_ref, "winograd"));   /* fp32: direct */
  g_assert_null (strstr (d_direct, "winograd"));
  g_assert_nonnull (strstr (d_wino, "winograd"));
  double e_direct = 0.0, e_wino = 0.0, s_direct = 0.0, s_wino = 0.0;
  for (size_t i = 0; i < n; i++) {
    e_direct = fmax (e_direct, fabs ((double) direct[i] - ref[i]));
    e_wino = fmax (e_wino, fabs ((double) wino[i] - ref[i]));
    s_direct += fabs ((double) direct[i] - ref[i]);
    s_wino += fabs ((double) wino[i] - ref[i]);
  }
  g_test_message ("|logit - fp32|: bf16 direct max %g mean %g, bf16 "
      "Winograd max %g mean %g (%s)", e_direct, s_direct / n, e_wino,
      s_wino / n, d_wino);
  g_assert_cmpfloat (e_wino, <=, 3.0 * e_direct);
  g_assert_cmpfloat (s_wino, <=, 3.0 * s_direct);
  g_free (ref);
  g_free (direct);
  g_free (wino);
  g_free (d_ref);
  g_free (d_direct);
  g_free (d_wino);
  g_free (in);
  cz_model_free (m);
#else
  g_test_skip ("built without oneDNN");
#endif
}

/* The network's Winograd path against its im2col path on the shipped
 * weights, at a size where the Winograd layers are used. */
static void
test_winograd_matches_im2col (void)
{
  CzModel *m = cz_model_load_bytes (model_bytes, model_size, "model", NULL);
  g_assert_nonnull (m);
  CzNet *fast = cz_net_new (m), *ref = cz_net_new (m);
  cz_net_disable_winograd (ref);
  const int h = 512, w = 520;
  g_assert_true (cz_net_prepare (fast, h, w));
  g_assert_true (cz_net_prepare (ref, h, w));
  int used = 0;
  for (int i = 0; i < fast->n_convs; i++)
    used += fast->use_wino[i];
  g_assert_cmpint (used, >, 0);
  float *in = wavy_plane (h, w);
  const size_t n = (size_t) CZ_N_BINS * (h / 4) * (w / 4);
  float *a = g_memdup2 (cz_net_forward (fast, in, 2), sizeof (float) * n);
  const float *b = cz_net_forward (ref, in, 2);
  double max_diff = 0.0, max_val = 0.0;
  for (size_t i = 0; i < n; i++) {
    max_diff = fmax (max_diff, fabs ((double) a[i] - b[i]));
    max_val = fmax (max_val, fabs (b[i]));
  }
  g_test_message ("%d Winograd layers; logits up to %g, max diff %g", used,
      max_val, max_diff);
  g_assert_cmpfloat (max_diff, <, 1e-3 * MAX (max_val, 1.0));
  g_free (a);
  g_free (in);
  cz_net_free (fast);
  cz_net_free (ref);
  cz_model_free (m);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  const char *path = g_getenv ("CZ_MODEL");
  if (!path || !g_file_get_contents (path, (gchar **) & model_bytes,
          &model_size, NULL))
    g_error ("set CZ_MODEL to the shipped model");
  g_test_add_func ("/model/loads-shipped", test_loads_shipped_model);
  g_test_add_func ("/model/missing-file", test_missing_file);
  g_test_add_func ("/model/bad-header-length", test_bad_header_length);
  g_test_add_func ("/model/bad-json", test_bad_json);
  g_test_add_func ("/model/bad-metadata", test_bad_metadata);
  g_test_add_func ("/model/bad-tensors", test_bad_tensors);
  g_test_add_func ("/model/bad-values", test_bad_values);
  g_test_add_func ("/model/truncations-and-flips", test_truncations_and_flips);
  g_test_add_func ("/model/hostile-headers", test_hostile_headers);
  g_test_add_func ("/model/names-and-ranges", test_names_and_ranges);
  g_test_add_func ("/model/not-a-regular-file", test_not_a_regular_file);
  g_test_add_func ("/model/fuzz-seeds-load", test_fuzz_seeds_load);
  g_test_add_func ("/model/f32-matches-f16", test_f32_matches_f16);
  g_test_add_func ("/model/backends-agree", test_backends_agree);
  g_test_add_func ("/model/auto-backend", test_auto_backend);
  g_test_add_func ("/model/dnnl-no-reference-code",
      test_dnnl_no_reference_code);
  g_test_add_func ("/model/dnnl-winograd-matches-direct",
      test_dnnl_winograd_matches_direct);
  g_test_add_func ("/model/winograd-matches-im2col",
      test_winograd_matches_im2col);
  int ret = g_test_run ();
  g_free (model_bytes);
  return ret;
}
