/**
 * SECTION:element-colorize
 * @title: colorize
 *
 * Colours grayscale video with the network of Zhang, Isola & Efros,
 * *Colorful Image Colorization* (ECCV 2016), computed on the CPU.
 *
 * Only the frame's luma is read.  The network predicts, for every pixel at a
 * quarter of the net resolution, a distribution over 313 quantised ab
 * colours; the element decodes it with the annealed mean, upsamples ab to
 * the frame and joins it with the frame's own full-resolution lightness.
 * YUV in gives the same YUV out with the Y plane untouched; gray in gives an
 * RGB-family or I420 frame, as negotiated.
 *
 * ## Example launch line
 * |[
 * gst-launch-1.0 filesrc location=film.mkv ! decodebin ! videoconvert ! \
 *     colorize ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]|
 * |[
 * gst-launch-1.0 v4l2src ! videoconvert ! video/x-raw,format=GRAY8 ! \
 *     colorize smoothing=0.6 ! videoconvert ! autovideosink
 * ]|
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "gstcolorize.h"

#include <string.h>

#include "cz-color.h"
#include "cz-colorizer.h"
#include "cz-model.h"

GST_DEBUG_CATEGORY_STATIC (gst_colorize_debug);
#define GST_CAT_DEFAULT gst_colorize_debug

#define DEFAULT_TEMPERATURE 0.38
#define DEFAULT_SATURATION 1.0
#define DEFAULT_SMOOTHING 0.0
#define DEFAULT_SCENE_THRESHOLD 0.1
#define DEFAULT_SMOOTHING_MOTION 1.0
#define DEFAULT_NET_SIZE 0
#define DEFAULT_N_THREADS 0
#define DEFAULT_BACKEND CZ_BACKEND_AUTO
#define DEFAULT_PRECISION CZ_PRECISION_AUTO
#define MAX_NET_SIZE 2048

enum
{
  PROP_0,
  PROP_MODEL_FILE,
  PROP_TEMPERATURE,
  PROP_SATURATION,
  PROP_SMOOTHING,
  PROP_SCENE_THRESHOLD,
  PROP_SMOOTHING_MOTION,
  PROP_NET_SIZE,
  PROP_N_THREADS,
  PROP_BACKEND,
  PROP_PRECISION,
};

typedef enum
{
  FAMILY_GRAY8,
  FAMILY_GRAY16,
  FAMILY_YUV,
  FAMILY_RGB,
} Family;

struct _GstColorize
{
  GstVideoFilter parent;

  /* properties, under the object lock */
  gchar *model_file;
  gdouble temperature;
  gboolean temperature_set;
  gdouble saturation;
  gdouble smoothing;
  gdouble scene_threshold;
  gdouble smoothing_motion;
  guint net_size;
  guint n_threads;
  CzBackend backend;
  CzPrecision precision;
  gdouble model_temperature;    /* the loaded model's own, 0 when none */

  /* streaming state, owned by the streaming thread between start and stop */
  CzModel *model;
  CzColorizer *cz;
  Family in_family, out_family;
  gboolean same_format;
  gint configured_net_size;
  float luma_table[256];
  CzRgbLayout in_rgb, out_rgb;
  CzYuvMatrix out_yuv;
};

#define GRAY_FORMATS "GRAY8, GRAY16_LE"
#define YUV_FORMATS "I420, NV12, Y444"
#define RGB_FORMATS "RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR"

static GstStaticPadTemplate sink_template = GST_STATIC_PAD_TEMPLATE ("sink",
    GST_PAD_SINK, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE ("{ " GRAY_FORMATS ", " YUV_FORMATS
            ", " RGB_FORMATS " }")));

static GstStaticPadTemplate src_template = GST_STATIC_PAD_TEMPLATE ("src",
    GST_PAD_SRC, GST_PAD_ALWAYS,
    GST_STATIC_CAPS (GST_VIDEO_CAPS_MAKE ("{ " YUV_FORMATS ", " RGB_FORMATS
            " }")));

#define GST_TYPE_COLORIZE_BACKEND (gst_colorize_backend_get_type ())
static GType
gst_colorize_backend_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {CZ_BACKEND_AUTO, "oneDNN where the build has it, else OpenBLAS; "
          "OpenBLAS for nets of 384 channels and more in fp32", "auto"},
    {CZ_BACKEND_OPENBLAS, "im2col/Winograd and OpenBLAS GEMMs (the reference)",
        "openblas"},
    {CZ_BACKEND_ONEDNN, "oneDNN convolutions, fused, blocked layouts",
        "onednn"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstColorizeBackend",
            values));
  return type;
}

#define GST_TYPE_COLORIZE_PRECISION (gst_colorize_precision_get_type ())
static GType
gst_colorize_precision_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {CZ_PRECISION_AUTO, "bf16 with oneDNN on CPUs with AVX512-BF16 or AMX, "
          "else fp32", "auto"},
    {CZ_PRECISION_FP32, "32-bit floats", "fp32"},
    {CZ_PRECISION_BF16, "bfloat16 weights and activations (oneDNN, on CPUs "
          "with AVX-512)", "bf16"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type))
    g_once_init_leave (&type, g_enum_register_static ("GstColorizePrecision",
            values));
  return type;
}

#define gst_colorize_parent_class parent_class
G_DEFINE_TYPE (GstColorize, gst_colorize, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE (colorize, "colorize", GST_RANK_NONE,
    GST_TYPE_COLORIZE);

static const gchar *
default_model_file (void)
{
  /* `meson devenv` points this at the model in the source tree */
  const gchar *env = g_getenv ("GST_COLORIZE_MODEL");
  return env && *env ? env : CZ_DEFAULT_MODEL;
}

static Family
format_family (GstVideoFormat f)
{
  switch (f) {
    case GST_VIDEO_FORMAT_GRAY8:
      return FAMILY_GRAY8;
    case GST_VIDEO_FORMAT_GRAY16_LE:
      return FAMILY_GRAY16;
    case GST_VIDEO_FORMAT_I420:
    case GST_VIDEO_FORMAT_NV12:
    case GST_VIDEO_FORMAT_Y444:
      return FAMILY_YUV;
    default:
      return FAMILY_RGB;
  }
}

/* ------------------------------------------------------------------ caps */

static const gchar *gray_out[] = { "I420", "RGB", "BGR", "RGBx", "BGRx",
  "xRGB", "xBGR", "RGBA", "BGRA", "ARGB", "ABGR", "NV12", "Y444", NULL
};

static const gchar *all_in[] = { "GRAY8", "GRAY16_LE", "I420", "NV12",
  "Y444", "RGB", "BGR", "RGBx", "BGRx", "xRGB", "xBGR", "RGBA", "BGRA",
  "ARGB", "ABGR", NULL
};

static void
add_format (GValue * list, const gchar * f)
{
  for (guint i = 0; i < gst_value_list_get_size (list); i++)
    if (!g_strcmp0 (g_value_get_string (gst_value_list_get_value (list, i)), f))
      return;
  GValue v = G_VALUE_INIT;
  g_value_init (&v, G_TYPE_STRING);
  g_value_set_string (&v, f);
  gst_value_list_append_and_take_value (list, &v);
}

/* The formats on the other side for one format on this side, in two lists:
 * `same`, the format itself (colour in, same colour out), whose colorimetry
 * and chroma siting carry over; `other`, the other family (gray in -> colour
 * out; seen from the source pad, a colour output may also come from gray),
 * for which they do not. */
static void
map_format (GValue * same, GValue * other, const gchar * f,
    GstPadDirection direction)
{
  const gboolean gray = !g_strcmp0 (f, "GRAY8") || !g_strcmp0 (f, "GRAY16_LE");
  if (!g_strv_contains (all_in, f))
    return;
  if (gray) {
    if (direction == GST_PAD_SINK)
      for (int i = 0; gray_out[i]; i++)
        add_format (other, gray_out[i]);
    return;
  }
  add_format (same, f);
  if (direction == GST_PAD_SRC) {
    add_format (other, "GRAY8");
    add_format (other, "GRAY16_LE");
  }
}

/* A copy of s with the formats of list, or NULL when the list is empty. */
static GstStructure *
with_formats (const GstStructure * s, GValue * list, gboolean keep_colour)
{
  if (gst_value_list_get_size (list) == 0) {
    g_value_unset (list);
    return NULL;
  }
  GstStructure *out = gst_structure_copy (s);
  gst_structure_take_value (out, "format", list);
  if (!keep_colour)
    gst_structure_remove_fields (out, "colorimetry", "chroma-site", NULL);
  return out;
}

static GstCaps *
gst_colorize_transform_caps (GstBaseTransform * trans,
    GstPadDirection direction, GstCaps * caps, GstCaps * filter)
{
  GstCaps *res = gst_caps_new_empty ();

  for (guint i = 0; i < gst_caps_get_size (caps); i++) {
    const GstStructure *s = gst_caps_get_structure (caps, i);
    const GValue *fv = gst_structure_get_value (s, "format");
    GValue same = G_VALUE_INIT, other = G_VALUE_INIT;
    g_value_init (&same, GST_TYPE_LIST);
    g_value_init (&other, GST_TYPE_LIST);

    if (fv && G_VALUE_HOLDS_STRING (fv)) {
      map_format (&same, &other, g_value_get_string (fv), direction);
    } else if (fv && GST_VALUE_HOLDS_LIST (fv)) {
      for (guint k = 0; k < gst_value_list_get_size (fv); k++) {
        const GValue *e = gst_value_list_get_value (fv, k);
        if (G_VALUE_HOLDS_STRING (e))
          map_format (&same, &other, g_value_get_string (e), direction);
      }
    } else {
      for (int k = 0; all_in[k]; k++)
        map_format (&same, &other, all_in[k], direction);
    }
    /* the same format first: colour in prefers to stay as it is */
    GstStructure *a = with_formats (s, &same, TRUE);
    GstStructure *b = with_formats (s, &other, FALSE);
    if (a)
      res = gst_caps_merge_structure (res, a);
    if (b)
      res = gst_caps_merge_structure (res, b);
  }
  if (filter) {
    GstCaps *tmp = gst_caps_intersect_full (filter, res,
        GST_CAPS_INTERSECT_FIRST);
    gst_caps_unref (res);
    res = tmp;
  }
  GST_DEBUG_OBJECT (trans, "%s %" GST_PTR_FORMAT " -> %" GST_PTR_FORMAT,
      direction == GST_PAD_SINK ? "sink" : "src", caps, res);
  return res;
}

/* ----------------------------------------------------------- setup */

static CzRgbLayout
rgb_layout (const GstVideoInfo * info)
{
  CzRgbLayout l;
  l.r = GST_VIDEO_INFO_COMP_POFFSET (info, GST_VIDEO_COMP_R);
  l.g = GST_VIDEO_INFO_COMP_POFFSET (info, GST_VIDEO_COMP_G);
  l.b = GST_VIDEO_INFO_COMP_POFFSET (info, GST_VIDEO_COMP_B);
  l.a = GST_VIDEO_INFO_HAS_ALPHA (info) ?
      GST_VIDEO_INFO_COMP_POFFSET (info, GST_VIDEO_COMP_A) : -1;
  l.bpp = GST_VIDEO_INFO_COMP_PSTRIDE (info, 0);
  return l;
}

static gboolean
is_limited (const GstVideoInfo * info)
{
  return info->colorimetry.range != GST_VIDEO_COLOR_RANGE_0_255;
}

/* Applies the net size and the frame geometry to the colorizer; called from
 * set_info and when net-size changes while playing. */
static gboolean
gst_colorize_configure (GstColorize * self, gint net_size)
{
  GstVideoFilter *filter = GST_VIDEO_FILTER (self);
  const GstVideoInfo *in = &filter->in_info, *out = &filter->out_info;
  GError *err = NULL;
  gint cw = GST_VIDEO_INFO_WIDTH (out), ch = GST_VIDEO_INFO_HEIGHT (out);

  if (self->out_family == FAMILY_YUV) {
    cw = GST_VIDEO_INFO_COMP_WIDTH (out, 1);
    ch = GST_VIDEO_INFO_COMP_HEIGHT (out, 1);
  }
  if (!cz_colorizer_configure (self->cz, GST_VIDEO_INFO_WIDTH (in),
          GST_VIDEO_INFO_HEIGHT (in), cw, ch, net_size, &err)) {
    if (g_error_matches (err, CZ_COLORIZER_ERROR, CZ_COLORIZER_ERROR_SIZE))
      GST_ELEMENT_ERROR (self, STREAM, FORMAT, ("Cannot colour %dx%d frames "
              "at net size %d.", GST_VIDEO_INFO_WIDTH (in),
              GST_VIDEO_INFO_HEIGHT (in), net_size), ("%s", err->message));
    else
      GST_ELEMENT_ERROR (self, RESOURCE, NO_SPACE_LEFT, ("Not enough memory "
              "to colour %dx%d frames.", GST_VIDEO_INFO_WIDTH (in),
              GST_VIDEO_INFO_HEIGHT (in)), ("%s", err->message));
    g_error_free (err);
    return FALSE;
  }
  self->configured_net_size = net_size;
  return TRUE;
}

static gboolean
gst_colorize_set_info (GstVideoFilter * filter, GstCaps * incaps,
    GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  GstColorize *self = GST_COLORIZE (filter);
  const GstVideoFormat inf = GST_VIDEO_INFO_FORMAT (in_info);
  const GstVideoFormat outf = GST_VIDEO_INFO_FORMAT (out_info);

  if (!self->cz)
    goto not_started;
  if (GST_VIDEO_INFO_WIDTH (in_info) != GST_VIDEO_INFO_WIDTH (out_info)
      || GST_VIDEO_INFO_HEIGHT (in_info) != GST_VIDEO_INFO_HEIGHT (out_info))
    goto size_mismatch;

  self->in_family = format_family (inf);
  self->out_family = format_family (outf);
  self->same_format = inf == outf;
  if (self->out_family == FAMILY_GRAY8 || self->out_family == FAMILY_GRAY16)
    goto bad_format;
  if ((self->in_family == FAMILY_YUV || self->in_family == FAMILY_RGB)
      && !self->same_format)
    goto bad_format;

  cz_luma_table (self->luma_table, self->in_family == FAMILY_YUV
      && is_limited (in_info));
  if (self->in_family == FAMILY_RGB)
    self->in_rgb = rgb_layout (in_info);
  if (self->out_family == FAMILY_RGB)
    self->out_rgb = rgb_layout (out_info);
  if (self->out_family == FAMILY_YUV) {
    GstVideoColorMatrix matrix = out_info->colorimetry.matrix;
    if (matrix == GST_VIDEO_COLOR_MATRIX_UNKNOWN
        || matrix == GST_VIDEO_COLOR_MATRIX_RGB)
      matrix = GST_VIDEO_COLOR_MATRIX_BT601;
    gst_video_color_matrix_get_Kr_Kb (matrix, &self->out_yuv.kr,
        &self->out_yuv.kb);
    self->out_yuv.limited = is_limited (out_info);
  }

  GST_OBJECT_LOCK (self);
  gint net_size = self->net_size;
  GST_OBJECT_UNLOCK (self);
  /* set_info runs before in_info/out_info are stored on the filter */
  filter->in_info = *in_info;
  filter->out_info = *out_info;
  if (!gst_colorize_configure (self, net_size))
    return FALSE;
  GST_INFO_OBJECT (self, "%s %dx%d -> %s", gst_video_format_to_string (inf),
      GST_VIDEO_INFO_WIDTH (in_info), GST_VIDEO_INFO_HEIGHT (in_info),
      gst_video_format_to_string (outf));
  return TRUE;

  /* ERRORS */
not_started:
  {
    GST_ERROR_OBJECT (self, "no model loaded");
    return FALSE;
  }
size_mismatch:
  {
    GST_ERROR_OBJECT (self, "input and output sizes differ");
    return FALSE;
  }
bad_format:
  {
    GST_ERROR_OBJECT (self, "cannot convert %s to %s",
        gst_video_format_to_string (inf), gst_video_format_to_string (outf));
    return FALSE;
  }
}

/* -------------------------------------------------------------- frames */

static void
read_luma (GstColorize * self, GstVideoFrame * in, float *L, int nt)
{
  const gint w = GST_VIDEO_FRAME_WIDTH (in), h = GST_VIDEO_FRAME_HEIGHT (in);
  const guint8 *src = GST_VIDEO_FRAME_PLANE_DATA (in, 0);
  const gint stride = GST_VIDEO_FRAME_PLANE_STRIDE (in, 0);

  switch (self->in_family) {
    case FAMILY_GRAY8:
    case FAMILY_YUV:
      cz_read_luma8 (src, stride, 1, w, h, self->luma_table, L, nt);
      break;
    case FAMILY_GRAY16:
      cz_read_gray16le (src, stride, w, h, L, nt);
      break;
    case FAMILY_RGB:
      cz_read_rgb8 (src, stride, &self->in_rgb, w, h, self->luma_table, L, nt);
      break;
  }
}

static void
write_colour (GstColorize * self, GstVideoFrame * out, const float *full_L,
    const float *L, const float *ab, int nt)
{
  const gint w = GST_VIDEO_FRAME_WIDTH (out), h = GST_VIDEO_FRAME_HEIGHT (out);

  if (self->out_family == FAMILY_RGB) {
    cz_write_rgb8 (L, ab, w, h, GST_VIDEO_FRAME_PLANE_DATA (out, 0),
        GST_VIDEO_FRAME_PLANE_STRIDE (out, 0), &self->out_rgb,
        !self->same_format, nt);
    return;
  }
  if (!self->same_format)       /* gray in: write Y from the gray levels */
    cz_write_luma8 (full_L, w, h, GST_VIDEO_FRAME_PLANE_DATA (out, 0),
        GST_VIDEO_FRAME_PLANE_STRIDE (out, 0), self->out_yuv.limited, nt);

  const gint cw = GST_VIDEO_FRAME_COMP_WIDTH (out, 1);
  const gint ch = GST_VIDEO_FRAME_COMP_HEIGHT (out, 1);
  guint8 *u = GST_VIDEO_FRAME_COMP_DATA (out, 1);
  guint8 *v = GST_VIDEO_FRAME_COMP_DATA (out, 2);
  cz_write_chroma8 (L, ab, cw, ch, u, GST_VIDEO_FRAME_COMP_STRIDE (out, 1), v,
      GST_VIDEO_FRAME_COMP_STRIDE (out, 2),
      GST_VIDEO_FRAME_COMP_PSTRIDE (out, 1), &self->out_yuv, nt);
}

static GstFlowReturn
gst_colorize_transform_frame (GstVideoFilter * filter, GstVideoFrame * in,
    GstVideoFrame * out)
{
  GstColorize *self = GST_COLORIZE (filter);
  CzParams params;
  gint net_size;

  GST_OBJECT_LOCK (self);
  params.temperature = self->temperature_set ? self->temperature
      : self->model_temperature;
  params.saturation = self->saturation;
  params.smoothing = self->smoothing;
  params.scene_threshold = self->scene_threshold;
  params.motion = self->smoothing_motion;
  net_size = self->net_size;
  GST_OBJECT_UNLOCK (self);

  if (net_size != self->configured_net_size
      && !gst_colorize_configure (self, net_size))
    return GST_FLOW_ERROR;
  if (GST_BUFFER_FLAG_IS_SET (in->buffer, GST_BUFFER_FLAG_DISCONT))
    cz_colorizer_reset (self->cz);

  const int nt = cz_colorizer_n_threads (self->cz);
  float *full_L = cz_colorizer_luma (self->cz);
  const float *L, *ab;
  read_luma (self, in, full_L, nt);
  cz_colorizer_run (self->cz, &params, &L, &ab);

  /* same format: keep luma, alpha and padding, replace only the colour */
  if (self->same_format && !gst_video_frame_copy (out, in)) {
    GST_ELEMENT_ERROR (self, STREAM, FAILED, (NULL), ("frame copy failed"));
    return GST_FLOW_ERROR;
  }
  write_colour (self, out, full_L, L, ab, nt);
  return GST_FLOW_OK;
}

/* ------------------------------------------------------ start / stop */

static gboolean
gst_colorize_start (GstBaseTransform * trans)
{
  GstColorize *self = GST_COLORIZE (trans);
  GError *err = NULL;

  GST_OBJECT_LOCK (self);
  gchar *path = g_strdup (self->model_file ? self->model_file
      : default_model_file ());
  guint n_threads = self->n_threads;
  CzBackend backend = self->backend;
  CzPrecision precision = self->precision;
  GST_OBJECT_UNLOCK (self);

  self->model = cz_model_load (path, &err);
  if (!self->model)
    goto load_failed;
  self->cz = cz_colorizer_new_full (self->model, (int) n_threads, backend,
      precision, &err);
  if (!self->cz)
    goto no_backend;
  self->configured_net_size = -1;
  GST_OBJECT_LOCK (self);
  self->model_temperature = self->model->temperature;
  GST_OBJECT_UNLOCK (self);
  GST_INFO_OBJECT (self, "loaded %s: widths %d..%d, net size %d, up to %d "
      "threads, %s", path, self->model->widths[0], self->model->widths[7],
      self->model->net_size, cz_colorizer_n_threads (self->cz),
      cz_colorizer_backend (self->cz));
  g_free (path);
  return TRUE;

  /* ERRORS */
load_failed:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ,
        ("Could not load the colorization model \"%s\".", path),
        ("%s", err->message));
    g_error_free (err);
    g_free (path);
    return FALSE;
  }
no_backend:
  {
    GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS,
        ("The backend and precision asked for are not available."),
        ("%s", err->message));
    g_error_free (err);
    cz_model_free (self->model);
    self->model = NULL;
    g_free (path);
    return FALSE;
  }
}

static gboolean
gst_colorize_stop (GstBaseTransform * trans)
{
  GstColorize *self = GST_COLORIZE (trans);
  /* the model's settings go under the lock that get_property() reads them
   * under; the model itself is the streaming thread's alone */
  GST_OBJECT_LOCK (self);
  self->model_temperature = 0.0;
  GST_OBJECT_UNLOCK (self);
  cz_colorizer_free (self->cz);
  cz_model_free (self->model);
  self->cz = NULL;
  self->model = NULL;
  return TRUE;
}

static gboolean
gst_colorize_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  GstColorize *self = GST_COLORIZE (trans);
  if (GST_EVENT_TYPE (event) == GST_EVENT_FLUSH_STOP && self->cz)
    cz_colorizer_reset (self->cz);
  return GST_BASE_TRANSFORM_CLASS (parent_class)->sink_event (trans, event);
}

/* ---------------------------------------------------------- properties */

static void
gst_colorize_set_property (GObject * object, guint prop_id,
    const GValue * value, GParamSpec * pspec)
{
  GstColorize *self = GST_COLORIZE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL_FILE:
    case PROP_N_THREADS:
    case PROP_BACKEND:
    case PROP_PRECISION:
      if (GST_STATE (self) > GST_STATE_READY
          || GST_STATE_PENDING (self) > GST_STATE_READY) {
        g_warning ("colorize: %s can only be changed in the NULL or READY "
            "state", pspec->name);
        break;
      }
      if (prop_id == PROP_N_THREADS) {
        self->n_threads = g_value_get_uint (value);
      } else if (prop_id == PROP_BACKEND) {
        self->backend = g_value_get_enum (value);
      } else if (prop_id == PROP_PRECISION) {
        self->precision = g_value_get_enum (value);
      } else {
        g_free (self->model_file);
        self->model_file = g_value_dup_string (value);
      }
      break;
    case PROP_TEMPERATURE:
      self->temperature = g_value_get_double (value);
      self->temperature_set = TRUE;
      break;
    case PROP_SATURATION:
      self->saturation = g_value_get_double (value);
      break;
    case PROP_SMOOTHING:
      self->smoothing = g_value_get_double (value);
      break;
    case PROP_SCENE_THRESHOLD:
      self->scene_threshold = g_value_get_double (value);
      break;
    case PROP_SMOOTHING_MOTION:
      self->smoothing_motion = g_value_get_double (value);
      break;
    case PROP_NET_SIZE:{
      guint v = g_value_get_uint (value);
      if (v % 8 != 0) {
        g_warning ("colorize: net-size %u is not a multiple of 8; using %u",
            v, v / 8 * 8);
        v = v / 8 * 8;
      }
      self->net_size = v;
      break;
    }
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_colorize_get_property (GObject * object, guint prop_id, GValue * value,
    GParamSpec * pspec)
{
  GstColorize *self = GST_COLORIZE (object);

  GST_OBJECT_LOCK (self);
  switch (prop_id) {
    case PROP_MODEL_FILE:
      g_value_set_string (value, self->model_file ? self->model_file
          : default_model_file ());
      break;
    case PROP_TEMPERATURE:
      g_value_set_double (value, self->temperature_set
          || self->model_temperature <= 0.0 ? self->temperature
          : self->model_temperature);
      break;
    case PROP_SATURATION:
      g_value_set_double (value, self->saturation);
      break;
    case PROP_SMOOTHING:
      g_value_set_double (value, self->smoothing);
      break;
    case PROP_SCENE_THRESHOLD:
      g_value_set_double (value, self->scene_threshold);
      break;
    case PROP_SMOOTHING_MOTION:
      g_value_set_double (value, self->smoothing_motion);
      break;
    case PROP_NET_SIZE:
      g_value_set_uint (value, self->net_size);
      break;
    case PROP_N_THREADS:
      g_value_set_uint (value, self->n_threads);
      break;
    case PROP_BACKEND:
      g_value_set_enum (value, self->backend);
      break;
    case PROP_PRECISION:
      g_value_set_enum (value, self->precision);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
      break;
  }
  GST_OBJECT_UNLOCK (self);
}

static void
gst_colorize_finalize (GObject * object)
{
  GstColorize *self = GST_COLORIZE (object);
  g_free (self->model_file);
  G_OBJECT_CLASS (parent_class)->finalize (object);
}

static void
gst_colorize_class_init (GstColorizeClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

  gobject_class->set_property = gst_colorize_set_property;
  gobject_class->get_property = gst_colorize_get_property;
  gobject_class->finalize = gst_colorize_finalize;

  /**
   * GstColorize:model-file:
   *
   * The model, a safetensors file in the project's ECCV16 layout. The
   * default is the model installed with the plugin (or $GST_COLORIZE_MODEL).
   */
  g_object_class_install_property (gobject_class, PROP_MODEL_FILE,
      g_param_spec_string ("model-file", "Model file",
          "Path of the colorization model (.safetensors); the default is the "
          "model installed with the plugin, or $GST_COLORIZE_MODEL", NULL,
          rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstColorize:temperature:
   *
   * Temperature T of the annealed mean: 1 gives the mean of the predicted
   * colour distribution (desaturated), towards 0 its mode (vivid, patchy).
   * Until set, the model's own default (0.38, the paper's, unless the model
   * file names another).
   */
  g_object_class_install_property (gobject_class, PROP_TEMPERATURE,
      g_param_spec_double ("temperature", "Temperature",
          "Annealed-mean temperature: 1 = mean colour, towards 0 = most "
          "likely colour (until set: the model's own, 0.38 by default)",
          0.01, 10.0, DEFAULT_TEMPERATURE, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstColorize:saturation:
   *
   * Gain applied to the predicted a*b* (0 = gray, 1 = as predicted).
   */
  g_object_class_install_property (gobject_class, PROP_SATURATION,
      g_param_spec_double ("saturation", "Saturation",
          "Gain on the predicted chroma (0 = gray, 1 = as predicted)",
          0.0, 4.0, DEFAULT_SATURATION, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstColorize:smoothing:
   *
   * Temporal smoothing: weight of the previous frame's colour distribution
   * when mixed with this frame's (0 = off). Reset at scene cuts, seeks and
   * discontinuities.
   */
  g_object_class_install_property (gobject_class, PROP_SMOOTHING,
      g_param_spec_double ("smoothing", "Smoothing",
          "Temporal smoothing of the colour distributions: weight of the "
          "past frames in [0, 1) (0 = off)", 0.0, 0.99, DEFAULT_SMOOTHING,
          rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstColorize:scene-threshold:
   *
   * Mean absolute lightness change between consecutive frames (L* / 100)
   * above which a frame is taken as a scene cut and smoothing restarts
   * (0 = never restart).
   */
  g_object_class_install_property (gobject_class, PROP_SCENE_THRESHOLD,
      g_param_spec_double ("scene-threshold", "Scene threshold",
          "Mean lightness change (L*/100) between frames that counts as a "
          "scene cut and restarts smoothing (0 = never)", 0.0, 1.0,
          DEFAULT_SCENE_THRESHOLD, rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstColorize:smoothing-motion:
   *
   * Where an object moves, smoothing lets go: a pixel whose 4x4 block of
   * the network's input changed since the last frame by this mean |dL*|
   * (0-100) plus 16 times the frame's mean change gets half the smoothing
   * weight, more change less, so that moving objects keep their own colour
   * while still areas stay steady; a hand-held camera's drift or foliage in
   * the wind, which move the whole frame a little, keep the full weight.
   * 0 = the same weight everywhere (the fixed mix of earlier releases).
   * With it, a high smoothing (0.9-0.95) steadies still areas without
   * smearing moving objects (README, Temporal smoothing).
   */
  g_object_class_install_property (gobject_class, PROP_SMOOTHING_MOTION,
      g_param_spec_double ("smoothing-motion", "Smoothing motion",
          "Lightness change (L*, 0-100) of a pixel's neighbourhood, beyond "
          "16x the frame's mean change, at which its smoothing weight is "
          "halved (0 = one weight everywhere)",
          0.0, 100.0, DEFAULT_SMOOTHING_MOTION,
          rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstColorize:net-size:
   *
   * Short side, in pixels, of the image the network sees (a multiple of 8);
   * 0 = the size the model was trained at, which gives the best colours.
   */
  g_object_class_install_property (gobject_class, PROP_NET_SIZE,
      g_param_spec_uint ("net-size", "Net size",
          "Short side of the network input, multiple of 8 (0 = the model's "
          "own training size)", 0, MAX_NET_SIZE, DEFAULT_NET_SIZE,
          rw | GST_PARAM_MUTABLE_PLAYING));
  /**
   * GstColorize:n-threads:
   *
   * Threads for inference (0 = one per core). Output is identical for a
   * given thread count.
   */
  g_object_class_install_property (gobject_class, PROP_N_THREADS,
      g_param_spec_uint ("n-threads", "Threads",
          "Threads used for inference (0 = one per core)", 0, 256,
          DEFAULT_N_THREADS, rw | GST_PARAM_MUTABLE_READY));

  /**
   * GstColorize:backend:
   *
   * Which code computes the network: oneDNN (convolutions with their ReLU
   * and batch norm fused, blocked layouts, bf16 where the CPU has it) or
   * the OpenBLAS reference path.  auto: oneDNN where the build has it,
   * but OpenBLAS for a wide net (384 channels and more: the paper's full
   * model) that oneDNN would compute in fp32, where OpenBLAS's Winograd
   * layers are faster.
   */
  g_object_class_install_property (gobject_class, PROP_BACKEND,
      g_param_spec_enum ("backend", "Backend",
          "Code that computes the network: auto (oneDNN where built, else "
          "OpenBLAS; OpenBLAS for wide nets in fp32), openblas (the "
          "reference), onednn",
          GST_TYPE_COLORIZE_BACKEND, DEFAULT_BACKEND,
          rw | GST_PARAM_MUTABLE_READY));
  /**
   * GstColorize:precision:
   *
   * Arithmetic of the network: fp32, or bf16 weights and activations
   * (oneDNN only; ab within 1.5 of fp32; emulated on AVX-512 CPUs without
   * AVX512-BF16, refused on others).  auto: bf16 on CPUs that compute it
   * natively (AVX512-BF16, AMX), else fp32.
   */
  g_object_class_install_property (gobject_class, PROP_PRECISION,
      g_param_spec_enum ("precision", "Precision",
          "Arithmetic of the network: auto (bf16 with oneDNN on CPUs with "
          "AVX512-BF16 or AMX, else fp32), fp32, bf16",
          GST_TYPE_COLORIZE_PRECISION, DEFAULT_PRECISION,
          rw | GST_PARAM_MUTABLE_READY));

  gst_element_class_add_static_pad_template (element_class, &sink_template);
  gst_element_class_add_static_pad_template (element_class, &src_template);
  gst_element_class_set_static_metadata (element_class, "Colorize",
      "Filter/Effect/Video",
      "Colours grayscale video with the Colorful Image Colorization network "
      "(Zhang, Isola & Efros, ECCV 2016)", "gst-colorize developers");

  trans_class->transform_caps = gst_colorize_transform_caps;
  trans_class->start = gst_colorize_start;
  trans_class->stop = gst_colorize_stop;
  trans_class->sink_event = gst_colorize_sink_event;
  filter_class->set_info = gst_colorize_set_info;
  filter_class->transform_frame = gst_colorize_transform_frame;
}

static void
gst_colorize_init (GstColorize * self)
{
  self->temperature = DEFAULT_TEMPERATURE;
  self->saturation = DEFAULT_SATURATION;
  self->smoothing = DEFAULT_SMOOTHING;
  self->scene_threshold = DEFAULT_SCENE_THRESHOLD;
  self->smoothing_motion = DEFAULT_SMOOTHING_MOTION;
  self->net_size = DEFAULT_NET_SIZE;
  self->n_threads = DEFAULT_N_THREADS;
  self->backend = DEFAULT_BACKEND;
  self->precision = DEFAULT_PRECISION;
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), TRUE);
}

static gboolean
plugin_init (GstPlugin * plugin)
{
  GST_DEBUG_CATEGORY_INIT (gst_colorize_debug, "colorize", 0,
      "colorize element");
  return GST_ELEMENT_REGISTER (colorize, plugin);
}

GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, colorize,
    "Colour grayscale video with Colorful Image Colorization (ECCV16)",
    plugin_init, VERSION, "LGPL", PACKAGE_NAME, PACKAGE_ORIGIN)
