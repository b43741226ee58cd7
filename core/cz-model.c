#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, fstat */

#include "cz-model.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

GQuark
cz_model_error_quark (void)
{
  return g_quark_from_static_string ("cz-model-error-quark");
}

/* IEEE half -> float, including subnormals, infinities and NaN. */
static float
half_to_float (uint16_t h)
{
  const uint32_t sign = (uint32_t) (h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {                    /* subnormal: normalise */
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        exp--;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ff) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000 | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  memcpy (&f, &bits, sizeof f);
  return f;
}

static void
tensor_free (gpointer p)
{
  CzTensor *t = p;
  g_free (t->name);
  g_free (t->data);
  g_free (t);
}

void
cz_model_free (CzModel * model)
{
  if (!model)
    return;
  if (model->metadata)
    g_hash_table_unref (model->metadata);
  if (model->tensors)
    g_hash_table_unref (model->tensors);
  g_free (model);
}

const float *
cz_model_tensor (const CzModel * model, const char *name)
{
  CzTensor *t = g_hash_table_lookup (model->tensors, name);
  g_assert (t != NULL);
  return t->data;
}

/* The expected shape of every tensor, from the block widths. */
typedef struct
{
  char name[32];
  int n_dims;
  int64_t shape[4];
} Expected;

static void
expect (GArray * a, const char *name, int n, int64_t d0, int64_t d1,
    int64_t d2, int64_t d3)
{
  Expected e = { {0}, n, {d0, d1, d2, d3} };
  g_strlcpy (e.name, name, sizeof e.name);
  g_array_append_val (a, e);
}

/* The tensors of cz_layers for the model's widths. */
static GArray *
expected_tensors (const int *widths)
{
  GArray *a = g_array_new (FALSE, TRUE, sizeof (Expected));
  char n[32];
  for (int i = 0; i < CZ_N_LAYERS; i++) {
    const CzLayer *l = &cz_layers[i];
    const int cin = cz_layer_channels (l->in, widths);
    const int cout = cz_layer_channels (l->out, widths);
    g_snprintf (n, sizeof n, "%s.weight", l->name);
    if (l->kind == CZ_LAYER_DECONV)
      expect (a, n, 4, cin, cout, l->k, l->k);
    else
      expect (a, n, 4, cout, cin, l->k, l->k);
    g_snprintf (n, sizeof n, "%s.bias", l->name);
    expect (a, n, 1, cout, 0, 0, 0);
    static const char *bn[] = { "mean", "var", "weight", "bias" };
    for (int k = 0; l->bn && k < 4; k++) {
      g_snprintf (n, sizeof n, "bn%d.%s", l->bn, bn[k]);
      expect (a, n, 1, cout, 0, 0, 0);
    }
  }
  return a;
}

#define FAIL(code, ...) do { \
    g_set_error (error, CZ_MODEL_ERROR, code, __VA_ARGS__); \
    goto fail; } while (0)

static gboolean
parse_int (const char *s, long lo, long hi, long *out)
{
  char *end;
  errno = 0;
  long v = strtol (s, &end, 10);
  if (errno || end == s || *end != '\0' || v < lo || v > hi)
    return FALSE;
  *out = v;
  return TRUE;
}

static gboolean
parse_float (const char *s, double lo, double hi, float *out)
{
  char *end;
  double v = g_ascii_strtod (s, &end);
  if (end == s || *end != '\0' || !isfinite (v) || v < lo || v > hi)
    return FALSE;
  *out = (float) v;
  return TRUE;
}

static gboolean
read_metadata (CzModel * m, JsonObject * root, const char *what,
    GError ** error)
{
  JsonNode *node = json_object_get_member (root, "__metadata__");
  if (!node || !JSON_NODE_HOLDS_OBJECT (node))
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: no __metadata__ object", what);
  JsonObject *md = json_node_get_object (node);
  GList *keys = json_object_get_members (md);
  for (GList * l = keys; l; l = l->next) {
    JsonNode *v = json_object_get_member (md, l->data);
    if (!JSON_NODE_HOLDS_VALUE (v)
        || json_node_get_value_type (v) != G_TYPE_STRING) {
      g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_METADATA,
          "%s: metadata \"%s\" is not a string", what, (const char *) l->data);
      g_list_free (keys);
      goto fail;
    }
    g_hash_table_insert (m->metadata, g_strdup (l->data),
        g_strdup (json_node_get_string (v)));
  }
  g_list_free (keys);

  const char *topo = g_hash_table_lookup (m->metadata, "topology");
  if (!topo || strcmp (topo, "eccv16") != 0)
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: topology is \"%s\", expected "
        "\"eccv16\"", what, topo ? topo : "(missing)");
  const char *input = g_hash_table_lookup (m->metadata, "input");
  if (!input || strcmp (input, "L-50") != 0)
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: input convention is \"%s\", "
        "expected \"L-50\"", what, input ? input : "(missing)");

  const char *widths = g_hash_table_lookup (m->metadata, "widths");
  gchar **parts = widths ? g_strsplit (widths, ",", -1) : NULL;
  gboolean ok = parts && g_strv_length (parts) == CZ_N_BLOCKS;
  for (int i = 0; ok && i < CZ_N_BLOCKS; i++) {
    long v = 0;
    ok = parse_int (g_strstrip (parts[i]), 1, 4096, &v);
    m->widths[i] = (int) v;
  }
  g_strfreev (parts);
  if (!ok)
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: widths \"%s\" is not 8 integers "
        "in 1..4096", what, widths ? widths : "(missing)");

  const char *ns = g_hash_table_lookup (m->metadata, "net_size");
  long net_size;
  if (!ns || !parse_int (ns, 8, 4096, &net_size) || net_size % 8)
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: net_size \"%s\" is not a multiple "
        "of 8 in 8..4096", what, ns ? ns : "(missing)");
  m->net_size = (int) net_size;

  const char *t = g_hash_table_lookup (m->metadata, "temperature");
  m->temperature = 0.38f;
  if (t && !parse_float (t, 0.01, 100.0, &m->temperature))
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: temperature \"%s\" is not a number "
        "in 0.01..100", what, t);
  const char *eps = g_hash_table_lookup (m->metadata, "bn_eps");
  m->bn_eps = 1e-5f;
  if (eps && !parse_float (eps, 0.0, 1.0, &m->bn_eps))
    FAIL (CZ_MODEL_ERROR_METADATA, "%s: bn_eps \"%s\" is not a number in "
        "0..1", what, eps);
  return TRUE;
fail:
  return FALSE;
}

/* Reads an array member of non-negative integers into out[]; at most max. */
static int
read_int_array (JsonObject * o, const char *member, int64_t * out, int max)
{
  JsonNode *node = json_object_get_member (o, member);
  if (!node || !JSON_NODE_HOLDS_ARRAY (node))
    return -1;
  JsonArray *arr = json_node_get_array (node);
  const guint n = json_array_get_length (arr);
  if (n > (guint) max)
    return -1;
  for (guint i = 0; i < n; i++) {
    JsonNode *e = json_array_get_element (arr, i);
    if (!JSON_NODE_HOLDS_VALUE (e)
        || json_node_get_value_type (e) != G_TYPE_INT64)
      return -1;
    out[i] = json_node_get_int (e);
    if (out[i] < 0)
      return -1;
  }
  return (int) n;
}

static CzTensor *
read_tensor (const Expected * e, JsonObject * o, const uint8_t * data,
    uint64_t data_size, const char *what, GError ** error)
{
  CzTensor *t = NULL;
  JsonNode *dnode = json_object_get_member (o, "dtype");
  const char *dtype = dnode && JSON_NODE_HOLDS_VALUE (dnode)
      && json_node_get_value_type (dnode) == G_TYPE_STRING ?
      json_node_get_string (dnode) : NULL;
  size_t elem;
  if (dtype && strcmp (dtype, "F32") == 0)
    elem = 4;
  else if (dtype && strcmp (dtype, "F16") == 0)
    elem = 2;
  else
    FAIL (CZ_MODEL_ERROR_TENSOR, "%s: tensor %s has dtype %s; only F32 and "
        "F16 are supported", what, e->name, dtype ? dtype : "(missing)");

  int64_t shape[4], off[2];
  int n_dims = read_int_array (o, "shape", shape, 4);
  if (n_dims != e->n_dims
      || memcmp (shape, e->shape, sizeof (int64_t) * n_dims) != 0) {
    GString *want = g_string_new (NULL);
    for (int i = 0; i < e->n_dims; i++)
      g_string_append_printf (want, "%s%" G_GINT64_FORMAT, i ? ", " : "",
          e->shape[i]);
    g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_TENSOR,
        "%s: tensor %s has the wrong shape; the topology needs (%s)", what,
        e->name, want->str);
    g_string_free (want, TRUE);
    goto fail;
  }
  if (read_int_array (o, "data_offsets", off, 2) != 2 || off[0] > off[1]
      || (uint64_t) off[1] > data_size)
    FAIL (CZ_MODEL_ERROR_TENSOR, "%s: tensor %s has data offsets outside "
        "the file's %" G_GUINT64_FORMAT " data bytes (truncated?)", what,
        e->name, data_size);
  uint64_t count = 1;
  for (int i = 0; i < n_dims; i++)
    count *= (uint64_t) shape[i];       /* shapes are checked, cannot overflow */
  if ((uint64_t) (off[1] - off[0]) != count * elem)
    FAIL (CZ_MODEL_ERROR_TENSOR, "%s: tensor %s spans %" G_GINT64_FORMAT
        " bytes, its shape and dtype need %" G_GUINT64_FORMAT, what,
        e->name, off[1] - off[0], count * elem);

  t = g_new0 (CzTensor, 1);
  t->name = g_strdup (e->name);
  t->n_dims = n_dims;
  memcpy (t->shape, shape, sizeof shape);
  t->begin = (uint64_t) off[0];
  t->end = (uint64_t) off[1];
  t->data = g_try_new (float, count ? count : 1);
  if (!t->data)
    FAIL (CZ_MODEL_ERROR_IO, "%s: out of memory for tensor %s", what, e->name);
  const uint8_t *src = data + off[0];
  for (uint64_t i = 0; i < count; i++) {
    if (elem == 4) {
      uint32_t bits = (uint32_t) src[4 * i] | (uint32_t) src[4 * i + 1] << 8
          | (uint32_t) src[4 * i + 2] << 16 | (uint32_t) src[4 * i + 3] << 24;
      memcpy (&t->data[i], &bits, 4);
    } else {
      t->data[i] =
          half_to_float ((uint16_t) (src[2 * i] | src[2 * i + 1] << 8));
    }
    if (!isfinite (t->data[i]))
      FAIL (CZ_MODEL_ERROR_TENSOR, "%s: tensor %s holds a non-finite value",
          what, e->name);
  }
  return t;
fail:
  if (t)
    tensor_free (t);
  return NULL;
}

static gboolean
is_json_space (char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Walks the header text as JSON's grammar nests it -- brackets outside
 * strings -- and refuses it before parsing when it is not one object (text
 * before or after it: json-glib 1.6 leaks what it parsed when a second
 * object or array follows the first value), nests deeper than CZ_MAX_DEPTH
 * or its top-level object has more than CZ_MAX_ENTRIES members.  Other
 * malformed text is left to the parser to report. */
static gboolean
check_header_shape (const char *text, size_t n, const char *what,
    GError ** error)
{
  int depth = 0;
  size_t entries = 0, start = 0;
  gboolean in_string = FALSE, closed = FALSE;
  while (start < n && is_json_space (text[start]))
    start++;
  if (start == n || text[start] != '{')
    FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header is not a JSON object", what);
  for (size_t i = start; i < n; i++) {
    const char c = text[i];
    if (closed) {
      if (!is_json_space (c))
        FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header has text after its JSON "
            "object (at byte %zu of %zu)", what, i, n);
    } else if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = FALSE;
    } else if (c == '"') {
      in_string = TRUE;
    } else if (c == '{' || c == '[') {
      if (++depth > CZ_MAX_DEPTH)
        FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header is nested more than %d "
            "deep", what, CZ_MAX_DEPTH);
    } else if (c == '}' || c == ']') {
      closed = --depth == 0;
    } else if (c == ':' && depth == 1 && ++entries > CZ_MAX_ENTRIES) {
      FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header has more than %d entries",
          what, CZ_MAX_ENTRIES);
    }
  }
  return TRUE;
fail:
  return FALSE;
}

/* json-glib keeps one of two members of the same name without a word; the
 * parser's signals let us see every member as it is read. */
typedef struct
{
  GHashTable *seen;             /* JsonObject* -> GHashTable of names */
  gchar *duplicate;             /* the first name seen twice */
} MemberLog;

static void
on_object_member (JsonParser * parser, JsonObject * object,
    const gchar * name, gpointer user_data)
{
  MemberLog *log = user_data;
  GHashTable *names = g_hash_table_lookup (log->seen, object);
  if (!names) {
    names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_insert (log->seen, object, names);
  }
  if (!g_hash_table_add (names, g_strdup (name)) && !log->duplicate)
    log->duplicate = g_strdup (name);
}

typedef struct
{
  uint64_t begin, end;
  const char *name;
} Range;

static int
compare_ranges (const void *a, const void *b)
{
  const Range *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The tensors' data ranges must tile the data exactly. */
static gboolean
check_ranges (Range * r, int n, uint64_t data_size, const char *what,
    GError ** error)
{
  qsort (r, n, sizeof *r, compare_ranges);
  uint64_t at = 0;
  for (int i = 0; i < n; i++) {
    if (r[i].begin < at)
      FAIL (CZ_MODEL_ERROR_TENSOR, "%s: the data of tensors %s and %s "
          "overlap", what, r[i - 1].name, r[i].name);
    if (r[i].begin > at)
      FAIL (CZ_MODEL_ERROR_TENSOR, "%s: %" G_GUINT64_FORMAT " bytes of data "
          "before tensor %s belong to no tensor", what, r[i].begin - at,
          r[i].name);
    at = r[i].end;
  }
  if (at != data_size)
    FAIL (CZ_MODEL_ERROR_TENSOR, "%s: %" G_GUINT64_FORMAT " bytes after the "
        "last tensor", what, data_size - at);
  return TRUE;
fail:
  return FALSE;
}

CzModel *
cz_model_load_bytes (const uint8_t * data, size_t size, const char *what,
    GError ** error)
{
  CzModel *m = g_new0 (CzModel, 1);
  JsonParser *parser = NULL;
  GArray *expected = NULL;
  MemberLog log = { NULL, NULL };
  Range *ranges = NULL;
  m->metadata = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  m->tensors = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
      tensor_free);

  if (size < 8)
    FAIL (CZ_MODEL_ERROR_FORMAT, "%s: %zu bytes is too short for a "
        "safetensors file", what, size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--)
    n = (n << 8) | data[i];
  if (n < 2 || n > CZ_MAX_HEADER || n > size - 8)
    FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header length %" G_GUINT64_FORMAT
        " does not fit the file's %zu bytes (not a safetensors file, or "
        "truncated)", what, n, size);

  if (!check_header_shape ((const char *) data + 8, n, what, error))
    goto fail;
  parser = json_parser_new ();
  log.seen = g_hash_table_new_full (NULL, NULL, NULL,
      (GDestroyNotify) g_hash_table_unref);
  g_signal_connect (parser, "object-member", G_CALLBACK (on_object_member),
      &log);
  GError *jerr = NULL;
  if (!json_parser_load_from_data (parser, (const char *) data + 8, (gssize) n,
          &jerr)) {
    g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_FORMAT,
        "%s: header is not valid JSON: %s", what, jerr->message);
    g_error_free (jerr);
    goto fail;
  }
  if (log.duplicate)
    FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header names \"%s\" twice in one "
        "object", what, log.duplicate);
  JsonNode *root_node = json_parser_get_root (parser);
  if (!root_node || !JSON_NODE_HOLDS_OBJECT (root_node))
    FAIL (CZ_MODEL_ERROR_FORMAT, "%s: header is not a JSON object", what);
  JsonObject *root = json_node_get_object (root_node);
  if (!read_metadata (m, root, what, error))
    goto fail;

  const uint8_t *payload = data + 8 + n;
  const uint64_t payload_size = size - 8 - n;
  expected = expected_tensors (m->widths);
  ranges = g_new (Range, expected->len);
  for (guint i = 0; i < expected->len; i++) {
    const Expected *e = &g_array_index (expected, Expected, i);
    JsonNode *node = json_object_get_member (root, e->name);
    if (!node)
      FAIL (CZ_MODEL_ERROR_TENSOR, "%s: tensor %s is missing", what, e->name);
    if (!JSON_NODE_HOLDS_OBJECT (node))
      FAIL (CZ_MODEL_ERROR_TENSOR, "%s: entry %s is not an object", what,
          e->name);
    CzTensor *t = read_tensor (e, json_node_get_object (node), payload,
        payload_size, what, error);
    if (!t)
      goto fail;
    g_hash_table_insert (m->tensors, t->name, t);
    ranges[i] = (Range) {
    t->begin, t->end, t->name};
  }
  GList *members = json_object_get_members (root);
  for (GList * l = members; l; l = l->next) {
    if (strcmp (l->data, "__metadata__") != 0
        && !g_hash_table_contains (m->tensors, l->data)) {
      g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_TENSOR,
          "%s: unexpected tensor %s for topology eccv16", what,
          (const char *) l->data);
      g_list_free (members);
      goto fail;
    }
  }
  g_list_free (members);
  if (!check_ranges (ranges, (int) expected->len, payload_size, what, error))
    goto fail;
  for (int b = 1; b <= 7; b++) {
    char name[16];
    g_snprintf (name, sizeof name, "bn%d.var", b);
    const CzTensor *var = g_hash_table_lookup (m->tensors, name);
    for (int64_t c = 0; c < var->shape[0]; c++)
      if (var->data[c] < 0.0f)
        FAIL (CZ_MODEL_ERROR_TENSOR, "%s: tensor %s has a negative "
            "variance", what, name);
  }
  g_array_unref (expected);
  g_object_unref (parser);
  g_hash_table_unref (log.seen);
  g_free (ranges);
  return m;
fail:
  if (expected)
    g_array_unref (expected);
  if (parser)
    g_object_unref (parser);
  if (log.seen)
    g_hash_table_unref (log.seen);
  g_free (log.duplicate);
  g_free (ranges);
  cz_model_free (m);
  return NULL;
}

CzModel *
cz_model_load (const char *path, GError ** error)
{
  GError *err = NULL;
  GMappedFile *f = NULL;
  CzModel *m = NULL;
  struct stat st;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer */
  int fd = open (path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0 || fstat (fd, &st) != 0)
    FAIL (CZ_MODEL_ERROR_IO, "cannot read model file %s: %s", path,
        g_strerror (errno));
  if (!S_ISREG (st.st_mode))
    FAIL (CZ_MODEL_ERROR_IO, "model file %s is not a regular file", path);
  if ((guint64) st.st_size > CZ_MAX_FILE)
    FAIL (CZ_MODEL_ERROR_IO, "model file %s is larger than %" G_GUINT64_FORMAT
        " bytes", path, CZ_MAX_FILE);
  f = g_mapped_file_new_from_fd (fd, FALSE, &err);
  if (!f) {
    g_set_error (error, CZ_MODEL_ERROR, CZ_MODEL_ERROR_IO,
        "cannot read model file %s: %s", path, err->message);
    g_error_free (err);
    goto fail;
  }
  m = cz_model_load_bytes ((const uint8_t *) g_mapped_file_get_contents (f),
      g_mapped_file_get_length (f), path, error);
fail:
  if (f)
    g_mapped_file_unref (f);
  if (fd >= 0)
    close (fd);
  return m;
}
