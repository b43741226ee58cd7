/* The colorize element in GstHarness: negotiation for every format, odd
 * frame sizes with padded strides, timestamps and flags passed through, the
 * Y plane kept bit-exact, model errors failing the state change, state
 * cycling, caps changes and properties changed while buffers flow. */
#include <string.h>

#include <glib/gstdio.h>

#include <gst/check/gstcheck.h>
#include <gst/check/gstharness.h>
#include <gst/video/video.h>

static const gchar *gray_formats[] = { "GRAY8", "GRAY16_LE" };
static const gchar *yuv_formats[] = { "I420", "NV12", "Y444" };

static const gchar *rgb_formats[] = { "RGB", "BGR", "RGBx", "BGRx", "xRGB",
  "xBGR", "RGBA", "BGRA", "ARGB", "ABGR"
};

static GstCaps *
video_caps (const gchar * format, gint w, gint h)
{
  return gst_caps_new_simple ("video/x-raw", "format", G_TYPE_STRING, format,
      "width", G_TYPE_INT, w, "height", G_TYPE_INT, h, "framerate",
      GST_TYPE_FRACTION, 25, 1, NULL);
}

/* A frame of the given caps holding a smooth test pattern in its luma (or
 * gray / RGB values), with distinct, nonzero bytes in every padding byte so
 * that reading padding would show. */
static GstBuffer *
pattern_buffer (const GstVideoInfo * info, guint seed)
{
  GstBuffer *buf = gst_buffer_new_and_alloc (GST_VIDEO_INFO_SIZE (info));
  GstVideoFrame f;
  gst_buffer_memset (buf, 0, 0x5a, GST_VIDEO_INFO_SIZE (info));
  fail_unless (gst_video_frame_map (&f, info, buf, GST_MAP_WRITE));
  const gint w = GST_VIDEO_INFO_WIDTH (info), h = GST_VIDEO_INFO_HEIGHT (info);
  for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS (&f); c++) {
    guint8 *d = GST_VIDEO_FRAME_COMP_DATA (&f, c);
    const gint cw = GST_VIDEO_FRAME_COMP_WIDTH (&f, c);
    const gint ch = GST_VIDEO_FRAME_COMP_HEIGHT (&f, c);
    const gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&f, c);
    const gint st = GST_VIDEO_FRAME_COMP_STRIDE (&f, c);
    const gboolean chroma = GST_VIDEO_FORMAT_INFO_IS_YUV (info->finfo)
        && c > 0;
    const gboolean alpha = c == GST_VIDEO_COMP_A
        && GST_VIDEO_INFO_HAS_ALPHA (info);
    for (gint y = 0; y < ch; y++)
      for (gint x = 0; x < cw; x++) {
        guint v = chroma ? 128 : alpha ? 200 :
            (guint) (40 + (x * 160) / MAX (w, 1) + (y * 50) / MAX (h, 1)
            + seed) % 256;
        for (gint b = 0; b < ps; b++)   /* GRAY16: both bytes */
          d[y * st + x * ps + b] = (guint8) v;
      }
  }
  gst_video_frame_unmap (&f);
  return buf;
}

static GstHarness *
colorize_harness (const gchar * in_format, const gchar * out_caps, gint w,
    gint h)
{
  GstHarness *hrn = gst_harness_new ("colorize");
  GstCaps *in = video_caps (in_format, w, h);
  gst_harness_set_src_caps (hrn, in);
  if (out_caps)
    gst_harness_set_sink_caps_str (hrn, out_caps);
  return hrn;
}

static GstBuffer *
push_pull (GstHarness * hrn, GstBuffer * in)
{
  fail_unless_equals_int (gst_harness_push (hrn, in), GST_FLOW_OK);
  GstBuffer *out = gst_harness_pull (hrn);
  fail_unless (out != NULL);
  return out;
}

static void
current_out_info (GstHarness * hrn, GstVideoInfo * info)
{
  GstCaps *caps = gst_pad_get_current_caps (hrn->sinkpad);
  fail_unless (caps != NULL);
  fail_unless (gst_video_info_from_caps (info, caps));
  gst_caps_unref (caps);
}

/* Mean |chroma| of an output frame: mean |U-128|+|V-128| for YUV, mean
 * max-min of R,G,B for RGB. */
static gdouble
colourfulness (const GstVideoInfo * info, GstBuffer * buf)
{
  GstVideoFrame f;
  gdouble sum = 0;
  gint n = 0;
  fail_unless (gst_video_frame_map (&f, info, buf, GST_MAP_READ));
  if (GST_VIDEO_INFO_IS_YUV (info)) {
    for (gint y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT (&f, 1); y++)
      for (gint x = 0; x < GST_VIDEO_FRAME_COMP_WIDTH (&f, 1); x++, n++) {
        const guint8 *u = GST_VIDEO_FRAME_COMP_DATA (&f, 1);
        const guint8 *v = GST_VIDEO_FRAME_COMP_DATA (&f, 2);
        gint us = GST_VIDEO_FRAME_COMP_STRIDE (&f, 1);
        gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&f, 1);
        sum += ABS (u[y * us + x * ps] - 128) + ABS (v[y * us + x * ps] - 128);
      }
  } else {
    const guint8 *d = GST_VIDEO_FRAME_PLANE_DATA (&f, 0);
    gint st = GST_VIDEO_FRAME_PLANE_STRIDE (&f, 0);
    gint ps = GST_VIDEO_FRAME_COMP_PSTRIDE (&f, 0);
    gint r = GST_VIDEO_FRAME_COMP_POFFSET (&f, 0);
    gint g = GST_VIDEO_FRAME_COMP_POFFSET (&f, 1);
    gint b = GST_VIDEO_FRAME_COMP_POFFSET (&f, 2);
    for (gint y = 0; y < GST_VIDEO_FRAME_HEIGHT (&f); y++)
      for (gint x = 0; x < GST_VIDEO_FRAME_WIDTH (&f); x++, n++) {
        const guint8 *p = d + y * st + x * ps;
        sum += MAX (MAX (p[r], p[g]), p[b]) - MIN (MIN (p[r], p[g]), p[b]);
      }
  }
  gst_video_frame_unmap (&f);
  return sum / MAX (n, 1);
}

/* The alpha byte of the first pixel. */
static guint8
first_alpha (const GstVideoInfo * info, GstBuffer * buf)
{
  GstVideoFrame f;
  fail_unless (gst_video_frame_map (&f, info, buf, GST_MAP_READ));
  guint8 a = *(const guint8 *) GST_VIDEO_FRAME_COMP_DATA (&f,
      GST_VIDEO_COMP_A);
  gst_video_frame_unmap (&f);
  return a;
}

/* Gray in: every RGB format and I420 can be negotiated; the output is
 * coloured; alpha is opaque. */
GST_START_TEST (test_gray_to_every_output)
{
  const gchar *outs[G_N_ELEMENTS (rgb_formats) + 1];
  for (guint i = 0; i < G_N_ELEMENTS (rgb_formats); i++)
    outs[i] = rgb_formats[i];
  outs[G_N_ELEMENTS (rgb_formats)] = "I420";
  for (guint g = 0; g < G_N_ELEMENTS (gray_formats); g++)
    for (guint i = 0; i < G_N_ELEMENTS (outs); i++) {
      gchar *sink = g_strdup_printf ("video/x-raw,format=%s", outs[i]);
      GstHarness *hrn = colorize_harness (gray_formats[g], sink, 64, 48);
      GstVideoInfo in_info, out_info;
      gst_video_info_set_format (&in_info,
          gst_video_format_from_string (gray_formats[g]), 64, 48);
      GstBuffer *out = push_pull (hrn, pattern_buffer (&in_info, 0));
      current_out_info (hrn, &out_info);
      fail_unless_equals_string (gst_video_format_to_string
          (GST_VIDEO_INFO_FORMAT (&out_info)), outs[i]);
      fail_unless_equals_int (gst_buffer_get_size (out),
          GST_VIDEO_INFO_SIZE (&out_info));
      fail_unless (colourfulness (&out_info, out) > 1.0,
          "%s -> %s is not coloured", gray_formats[g], outs[i]);
      if (GST_VIDEO_INFO_HAS_ALPHA (&out_info))
        fail_unless_equals_int (first_alpha (&out_info, out), 255);
      gst_buffer_unref (out);
      gst_harness_teardown (hrn);
      g_free (sink);
    }
}

GST_END_TEST;

/* Colour in: the same format out; the Y plane (YUV) is bit-exact. */
GST_START_TEST (test_colour_formats_same_out)
{
  for (guint i = 0; i < G_N_ELEMENTS (yuv_formats); i++) {
    static const gint sizes[][2] = { {1, 1}, {3, 5}, {641, 479} };
    for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
      const gint w = sizes[s][0], h = sizes[s][1];
      GstHarness *hrn = colorize_harness (yuv_formats[i], NULL, w, h);
      GstVideoInfo info, out_info;
      gst_video_info_set_format (&info,
          gst_video_format_from_string (yuv_formats[i]), w, h);
      GstBuffer *in = pattern_buffer (&info, 3);
      GstBuffer *out = push_pull (hrn, gst_buffer_ref (in));
      current_out_info (hrn, &out_info);
      fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&out_info),
          GST_VIDEO_INFO_FORMAT (&info));
      GstVideoFrame fi, fo;
      gst_video_frame_map (&fi, &info, in, GST_MAP_READ);
      gst_video_frame_map (&fo, &out_info, out, GST_MAP_READ);
      for (gint y = 0; y < h; y++)
        fail_unless (memcmp ((guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&fi, 0) +
                y * GST_VIDEO_FRAME_PLANE_STRIDE (&fi, 0),
                (guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&fo, 0) +
                y * GST_VIDEO_FRAME_PLANE_STRIDE (&fo, 0), w) == 0,
            "%s %dx%d: Y row %d changed", yuv_formats[i], w, h, y);
      gst_video_frame_unmap (&fi);
      gst_video_frame_unmap (&fo);
      if (w > 8)
        fail_unless (colourfulness (&out_info, out) > 1.0);
      gst_buffer_unref (in);
      gst_buffer_unref (out);
      gst_harness_teardown (hrn);
    }
  }
  for (guint i = 0; i < G_N_ELEMENTS (rgb_formats); i++) {
    GstHarness *hrn = colorize_harness (rgb_formats[i], NULL, 31, 17);
    GstVideoInfo info, out_info;
    gst_video_info_set_format (&info,
        gst_video_format_from_string (rgb_formats[i]), 31, 17);
    GstBuffer *out = push_pull (hrn, pattern_buffer (&info, 0));
    current_out_info (hrn, &out_info);
    fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&out_info),
        GST_VIDEO_INFO_FORMAT (&info));
    fail_unless (colourfulness (&out_info, out) > 1.0);
    if (GST_VIDEO_INFO_HAS_ALPHA (&info))       /* alpha passes through */
      fail_unless_equals_int (first_alpha (&out_info, out), 200);
    gst_buffer_unref (out);
    gst_harness_teardown (hrn);
  }
}

GST_END_TEST;

/* A colour input cannot become another format; gray cannot be output. */
GST_START_TEST (test_refuses_other_conversions)
{
  GstHarness *hrn = gst_harness_new ("colorize");
  GstPad *src = gst_element_get_static_pad (hrn->element, "src");
  /* GRAY8 out is never offered */
  GstCaps *tmpl = gst_pad_get_pad_template_caps (src);
  GstCaps *gray = gst_caps_from_string ("video/x-raw,format=GRAY8");
  fail_if (gst_caps_can_intersect (tmpl, gray));
  gst_caps_unref (tmpl);
  gst_caps_unref (gray);
  /* NV12 in with RGB required downstream: not negotiable */
  gst_harness_set_sink_caps_str (hrn, "video/x-raw,format=RGB");
  gst_harness_set_src_caps (hrn, video_caps ("NV12", 16, 16));
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_NV12, 16, 16);
  fail_if (gst_harness_push (hrn, pattern_buffer (&info, 0)) == GST_FLOW_OK);
  gst_object_unref (src);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* Odd sizes and padded strides for gray input to RGB. */
GST_START_TEST (test_odd_sizes)
{
  static const gint sizes[][2] = { {1, 1}, {3, 5}, {641, 479}, {2, 1} };
  for (guint s = 0; s < G_N_ELEMENTS (sizes); s++) {
    const gint w = sizes[s][0], h = sizes[s][1];
    GstHarness *hrn = colorize_harness ("GRAY8", "video/x-raw,format=RGB",
        w, h);
    GstVideoInfo info, out_info;
    gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, w, h);
    if (w % 4)
      fail_unless (GST_VIDEO_INFO_PLANE_STRIDE (&info, 0) > w);
    GstBuffer *out = push_pull (hrn, pattern_buffer (&info, 0));
    current_out_info (hrn, &out_info);
    fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), w);
    fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), h);
    fail_unless_equals_int (gst_buffer_get_size (out),
        GST_VIDEO_INFO_SIZE (&out_info));
    gst_buffer_unref (out);
    gst_harness_teardown (hrn);
  }
}

GST_END_TEST;

GST_START_TEST (test_timestamps_and_flags)
{
  GstHarness *hrn = colorize_harness ("GRAY8", NULL, 32, 24);
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 32, 24);
  for (gint i = 0; i < 5; i++) {
    GstBuffer *in = pattern_buffer (&info, i);
    GST_BUFFER_PTS (in) = i * 40 * GST_MSECOND;
    GST_BUFFER_DTS (in) = i * 40 * GST_MSECOND + 1;
    GST_BUFFER_DURATION (in) = 40 * GST_MSECOND;
    GST_BUFFER_OFFSET (in) = i;
    if (i == 2)
      GST_BUFFER_FLAG_SET (in, GST_BUFFER_FLAG_DELTA_UNIT);
    GstBuffer *out = push_pull (hrn, in);
    fail_unless_equals_uint64 (GST_BUFFER_PTS (out), i * 40 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_DTS (out), i * 40 * GST_MSECOND + 1);
    fail_unless_equals_uint64 (GST_BUFFER_DURATION (out), 40 * GST_MSECOND);
    fail_unless_equals_uint64 (GST_BUFFER_OFFSET (out), i);
    fail_unless_equals_int (GST_BUFFER_FLAG_IS_SET (out,
            GST_BUFFER_FLAG_DELTA_UNIT), i == 2);
    gst_buffer_unref (out);
  }
  gst_harness_teardown (hrn);
}

GST_END_TEST;

static GstStateChangeReturn
start_with_model (const gchar * path, GstMessage ** error)
{
  GstElement *e = gst_element_factory_make ("colorize", NULL);
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (e, bus);
  g_object_set (e, "model-file", path, NULL);
  fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
      GST_STATE_CHANGE_SUCCESS);
  GstStateChangeReturn ret = gst_element_set_state (e, GST_STATE_PAUSED);
  *error = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_element_set_bus (e, NULL);
  gst_object_unref (bus);
  gst_object_unref (e);
  return ret;
}

static void
assert_model_error (const gchar * path, const gchar * fragment)
{
  GstMessage *msg = NULL;
  fail_unless_equals_int (start_with_model (path, &msg),
      GST_STATE_CHANGE_FAILURE);
  fail_unless (msg != NULL, "no error message for %s", path);
  GError *err = NULL;
  gchar *debug = NULL;
  gst_message_parse_error (msg, &err, &debug);
  fail_unless (err->domain == GST_RESOURCE_ERROR);
  fail_unless (strstr (err->message, path) != NULL, "%s", err->message);
  fail_unless (debug && strstr (debug, fragment) != NULL, "%s", debug);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
}

GST_START_TEST (test_missing_or_corrupt_model)
{
  assert_model_error ("/nonexistent/colorize.safetensors", "No such file");

  gchar *dir = g_dir_make_tmp ("colorize-XXXXXX", NULL);
  gchar *path = g_build_filename (dir, "corrupt.safetensors", NULL);
  gchar *bytes;
  gsize size;
  fail_unless (g_file_get_contents (g_getenv ("CZ_MODEL"), &bytes, &size,
          NULL));
  fail_unless (g_file_set_contents (path, bytes, size / 3, NULL));
  assert_model_error (path, "truncated");
  fail_unless (g_file_set_contents (path, "not a model at all", -1, NULL));
  assert_model_error (path, "header length");
  g_unlink (path);
  g_rmdir (dir);
  g_free (bytes);
  g_free (path);
  g_free (dir);

  GstMessage *msg = NULL;       /* and the real one starts */
  fail_unless_equals_int (start_with_model (g_getenv ("CZ_MODEL"), &msg),
      GST_STATE_CHANGE_SUCCESS);
  fail_unless (msg == NULL);
}

GST_END_TEST;

GST_START_TEST (test_state_cycling)
{
  GstHarness *hrn = colorize_harness ("GRAY8", NULL, 20, 12);
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 20, 12);
  for (gint i = 0; i < 4; i++) {
    gst_buffer_unref (push_pull (hrn, pattern_buffer (&info, i)));
    fail_unless_equals_int (gst_element_set_state (hrn->element,
            GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    fail_unless_equals_int (gst_element_set_state (hrn->element,
            GST_STATE_PLAYING), GST_STATE_CHANGE_SUCCESS);
    gst_harness_set_src_caps (hrn, video_caps ("GRAY8", 20, 12));
  }
  gst_buffer_unref (push_pull (hrn, pattern_buffer (&info, 9)));
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* Caps change mid-stream: size and format; output follows. */
GST_START_TEST (test_caps_change)
{
  GstHarness *hrn = colorize_harness ("GRAY8", NULL, 32, 24);
  GstVideoInfo info, out_info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 32, 24);
  gst_buffer_unref (push_pull (hrn, pattern_buffer (&info, 0)));
  gst_harness_set_src_caps (hrn, video_caps ("I420", 45, 61));
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_I420, 45, 61);
  GstBuffer *out = push_pull (hrn, pattern_buffer (&info, 0));
  current_out_info (hrn, &out_info);
  fail_unless_equals_int (GST_VIDEO_INFO_WIDTH (&out_info), 45);
  fail_unless_equals_int (GST_VIDEO_INFO_HEIGHT (&out_info), 61);
  fail_unless_equals_int (GST_VIDEO_INFO_FORMAT (&out_info),
      GST_VIDEO_FORMAT_I420);
  fail_unless_equals_int (gst_buffer_get_size (out),
      GST_VIDEO_INFO_SIZE (&out_info));
  gst_buffer_unref (out);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* Same input, same settings: same output; saturation 0 gives gray; the
 * temperature changes the colours. */
GST_START_TEST (test_settings_act)
{
  GstHarness *hrn = colorize_harness ("GRAY8", "video/x-raw,format=RGB", 48,
      32);
  GstVideoInfo info, out_info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 48, 32);
  GstBuffer *a = push_pull (hrn, pattern_buffer (&info, 0));
  GstBuffer *b = push_pull (hrn, pattern_buffer (&info, 0));
  current_out_info (hrn, &out_info);
  GstMapInfo ma, mb;
  gst_buffer_map (a, &ma, GST_MAP_READ);
  gst_buffer_map (b, &mb, GST_MAP_READ);
  fail_unless (ma.size == mb.size && memcmp (ma.data, mb.data, ma.size) == 0);
  gst_buffer_unmap (b, &mb);

  g_object_set (hrn->element, "temperature", 1.0, NULL);
  GstBuffer *c = push_pull (hrn, pattern_buffer (&info, 0));
  fail_unless (gst_buffer_memcmp (c, 0, ma.data, ma.size) != 0);
  fail_unless (colourfulness (&out_info, c) < colourfulness (&out_info, a),
      "T = 1 (the mean) should be less colourful than T = 0.38");
  gst_buffer_unmap (a, &ma);

  g_object_set (hrn->element, "saturation", 0.0, NULL);
  GstBuffer *d = push_pull (hrn, pattern_buffer (&info, 0));
  fail_unless (colourfulness (&out_info, d) < 0.5);
  gst_buffer_unref (a);
  gst_buffer_unref (b);
  gst_buffer_unref (c);
  gst_buffer_unref (d);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* The test pattern with its top-left corner [0, x1) x [0, y1) brightened
 * by `delta`: an object that moved against a still background, or (the
 * whole frame) a camera whose exposure drifts a little. */
static GstBuffer *
moved_buffer (const GstVideoInfo * info, gint x1, gint y1, guint8 delta)
{
  GstBuffer *buf = pattern_buffer (info, 0);
  GstMapInfo m;
  fail_unless (gst_buffer_map (buf, &m, GST_MAP_WRITE));
  const gint st = GST_VIDEO_INFO_PLANE_STRIDE (info, 0);
  for (gint y = 0; y < y1; y++)
    for (gint x = 0; x < x1; x++)
      m.data[y * st + x] = (guint8) MIN (255, m.data[y * st + x] + delta);
  gst_buffer_unmap (buf, &m);
  return buf;
}

/* Sum of |a - b| over columns [x0, x1) of rows [0, y1) of two packed RGB
 * frames. */
static guint64
region_diff (GstBuffer * a, GstBuffer * b, const GstVideoInfo * info,
    gint x0, gint x1, gint y1)
{
  GstMapInfo ma, mb;
  fail_unless (gst_buffer_map (a, &ma, GST_MAP_READ));
  fail_unless (gst_buffer_map (b, &mb, GST_MAP_READ));
  const gint st = GST_VIDEO_INFO_PLANE_STRIDE (info, 0);
  guint64 sum = 0;
  for (gint y = 0; y < y1; y++)
    for (gint x = 3 * x0; x < 3 * x1; x++)
      sum += (guint64) ABS (ma.data[y * st + x] - mb.data[y * st + x]);
  gst_buffer_unmap (a, &ma);
  gst_buffer_unmap (b, &mb);
  return sum;
}

/* The second frame (96x64) after the test pattern, once with smoothing 0.9
 * and the same weight everywhere (outs[0]), once with smoothing-motion 2
 * (outs[1]), once without smoothing (outs[2]); the second frame is the
 * pattern with [0, x1) x [0, y1) brightened by delta. */
static void
smooth_three_ways (gint x1, gint y1, guint8 delta, GstBuffer * outs[3],
    GstVideoInfo * out_info)
{
  GstHarness *hrn = colorize_harness ("GRAY8", "video/x-raw,format=RGB", 96,
      64);
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 96, 64);
  const gdouble motion[3] = { 0.0, 2.0, -1.0 }; /* -1: no smoothing */
  for (int k = 0; k < 3; k++) {
    g_object_set (hrn->element, "smoothing", motion[k] < 0 ? 0.0 : 0.9,
        "smoothing-motion", MAX (motion[k], 0.0), "scene-threshold", 0.0, NULL);
    /* a discontinuity restarts smoothing: each run starts afresh */
    GstBuffer *first = moved_buffer (&info, 0, 0, 0);
    GST_BUFFER_FLAG_SET (first, GST_BUFFER_FLAG_DISCONT);
    gst_buffer_unref (push_pull (hrn, first));
    outs[k] = push_pull (hrn, moved_buffer (&info, x1, y1, delta));
  }
  current_out_info (hrn, out_info);
  gst_harness_teardown (hrn);
}

/* smoothing-motion: where the lightness moved, the past weighs less (the
 * output is nearer the unsmoothed one); where it did not, the output is the
 * fixed smoothing's, bit for bit. */
GST_START_TEST (test_smoothing_lets_go_where_it_moves)
{
  GstVideoInfo out_info;
  GstBuffer *outs[3];
  smooth_three_ways (8, 8, 110, outs, &out_info);
  /* the right two thirds did not move: same as the fixed weight */
  fail_unless_equals_uint64 (region_diff (outs[0], outs[1], &out_info, 32,
          96, 64), 0);
  /* an 8x8 corner moved (a small object: the frame's mean change hardly
   * rises): inside it the past weighs far less than alpha, and the output
   * is nearer the unsmoothed frame than fixed smoothing's.  Measured
   * 0.03-0.07 of the fixed distance on four models; a 4-column strip, half
   * of whose blocks moved only in part, gave 0.35 on the shipped model but
   * 0.82 on a sharper one */
  const guint64 fixed = region_diff (outs[0], outs[2], &out_info, 0, 4, 4);
  const guint64 let_go = region_diff (outs[1], outs[2], &out_info, 0, 4, 4);
  fail_unless (fixed > 0);
  fail_unless (let_go * 4 < fixed, "moved pixels: %" G_GUINT64_FORMAT
      " vs fixed %" G_GUINT64_FORMAT, let_go, fixed);
  for (int k = 0; k < 3; k++)
    gst_buffer_unref (outs[k]);
}

GST_END_TEST;

/* ...but a change of the whole frame (a hand-held camera, foliage in the
 * wind, exposure drift) is not an object moving: smoothing keeps (almost)
 * its full weight there. */
GST_START_TEST (test_smoothing_holds_when_the_whole_frame_moves)
{
  GstVideoInfo out_info;
  GstBuffer *outs[3];
  smooth_three_ways (96, 64, 12, outs, &out_info);
  const guint64 fixed = region_diff (outs[0], outs[2], &out_info, 0, 96, 64);
  const guint64 held = region_diff (outs[0], outs[1], &out_info, 0, 96, 64);
  fail_unless (fixed > 0);
  fail_unless (held * 10 < fixed, "whole-frame change: %" G_GUINT64_FORMAT
      " from the fixed weight, which is %" G_GUINT64_FORMAT
      " from no smoothing", held, fixed);
  for (int k = 0; k < 3; k++)
    gst_buffer_unref (outs[k]);
}

GST_END_TEST;

/* Temporal smoothing mixes the past in; a scene cut resets it. */
GST_START_TEST (test_smoothing_and_scene_cut)
{
  GstHarness *hrn = colorize_harness ("GRAY8", "video/x-raw,format=RGB", 48,
      32);
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 48, 32);
  g_object_set (hrn->element, "smoothing", 0.9, "scene-threshold", 0.0, NULL);
  GstBuffer *first = push_pull (hrn, pattern_buffer (&info, 0));
  GstBuffer *dark = pattern_buffer (&info, 120);        /* another scene */
  GstBuffer *mixed = push_pull (hrn, gst_buffer_copy (dark));
  g_object_set (hrn->element, "smoothing", 0.0, NULL);
  GstBuffer *alone = push_pull (hrn, gst_buffer_copy (dark));
  GstMapInfo m;
  gst_buffer_map (alone, &m, GST_MAP_READ);
  fail_unless (gst_buffer_memcmp (mixed, 0, m.data, m.size) != 0,
      "smoothing changed nothing");
  gst_buffer_unmap (alone, &m);

  /* with a scene threshold, the cut resets: same as no smoothing */
  g_object_set (hrn->element, "smoothing", 0.9, "scene-threshold", 0.05, NULL);
  gst_buffer_unref (push_pull (hrn, pattern_buffer (&info, 0)));
  GstBuffer *cut = push_pull (hrn, gst_buffer_copy (dark));
  gst_buffer_map (alone, &m, GST_MAP_READ);
  fail_unless (gst_buffer_memcmp (cut, 0, m.data, m.size) == 0,
      "scene cut did not reset smoothing");
  gst_buffer_unmap (alone, &m);
  gst_buffer_unref (first);
  gst_buffer_unref (dark);
  gst_buffer_unref (mixed);
  gst_buffer_unref (alone);
  gst_buffer_unref (cut);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

static gpointer
twiddle_properties (gpointer data)
{
  GstElement *e = data;
  for (gint i = 0; i < 400; i++) {
    g_object_set (e, "temperature", 0.2 + (i % 5) * 0.1, "saturation",
        (i % 3) * 0.5, "smoothing", (i % 2) * 0.5, "net-size", (guint) (i % 3)
        * 32, NULL);
    g_usleep (200);
  }
  return NULL;
}

/* Properties set from another thread while buffers flow: every frame
 * comes out whole and the right size. */
GST_START_TEST (test_properties_from_another_thread)
{
  GstHarness *hrn = colorize_harness ("GRAY8", NULL, 64, 40);
  GstVideoInfo info, out_info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 64, 40);
  GThread *t = g_thread_new ("props", twiddle_properties, hrn->element);
  for (gint i = 0; i < 60; i++) {
    GstBuffer *out = push_pull (hrn, pattern_buffer (&info, i));
    current_out_info (hrn, &out_info);
    fail_unless_equals_int (gst_buffer_get_size (out),
        GST_VIDEO_INFO_SIZE (&out_info));
    gst_buffer_unref (out);
  }
  g_thread_join (t);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* model-file and n-threads cannot change while running. */
GST_START_TEST (test_ready_only_properties)
{
  GstHarness *hrn = colorize_harness ("GRAY8", NULL, 16, 16);
  gchar *before;
  g_object_get (hrn->element, "model-file", &before, NULL);
  ASSERT_WARNING (g_object_set (hrn->element, "model-file", "/tmp/x", NULL));
  gchar *after;
  g_object_get (hrn->element, "model-file", &after, NULL);
  fail_unless_equals_string (before, after);
  g_free (before);
  g_free (after);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* Same format out keeps the input's colorimetry: full-range video stays
 * full range downstream (it was read as limited range: gray 0x40 came out
 * of videoconvert as 62 instead of 71). */
GST_START_TEST (test_colorimetry_kept)
{
  static const gchar *cases[][2] = {
    {"I420", "1:4:0:0"}, {"NV12", "1:3:5:1"}, {"Y444", "2:4:5:4"},
    {"RGB", "sRGB"},
  };
  for (guint i = 0; i < G_N_ELEMENTS (cases); i++) {
    GstHarness *hrn = gst_harness_new ("colorize");
    GstCaps *caps = video_caps (cases[i][0], 16, 8);
    gst_caps_set_simple (caps, "colorimetry", G_TYPE_STRING, cases[i][1],
        "chroma-site", G_TYPE_STRING, "jpeg", NULL);
    GstVideoInfo info;
    fail_unless (gst_video_info_from_caps (&info, caps));
    gst_harness_set_src_caps (hrn, caps);
    gst_buffer_unref (push_pull (hrn, pattern_buffer (&info, 0)));
    GstVideoInfo out;
    current_out_info (hrn, &out);
    gchar *want = gst_video_colorimetry_to_string (&info.colorimetry);
    gchar *got = gst_video_colorimetry_to_string (&out.colorimetry);
    fail_unless_equals_string (got, want);
    if (GST_VIDEO_INFO_IS_YUV (&info))
      fail_unless_equals_int (out.chroma_site, info.chroma_site);
    g_free (want);
    g_free (got);
    gst_harness_teardown (hrn);
  }

  /* end to end: full-range gray 0x40 through colorize and videoconvert */
  GstHarness *hrn = gst_harness_new_parse ("colorize ! videoconvert");
  GstCaps *caps = video_caps ("I420", 16, 8);
  gst_caps_set_simple (caps, "colorimetry", G_TYPE_STRING, "1:4:0:0", NULL);
  GstVideoInfo info;
  fail_unless (gst_video_info_from_caps (&info, caps));
  gst_harness_set_src_caps (hrn, caps);
  gst_harness_set_sink_caps_str (hrn, "video/x-raw,format=GRAY8");
  GstBuffer *in = gst_buffer_new_and_alloc (GST_VIDEO_INFO_SIZE (&info));
  gst_buffer_memset (in, 0, 128, GST_VIDEO_INFO_SIZE (&info));
  gst_buffer_memset (in, 0, 0x40, 16 * 8);
  GstBuffer *out = push_pull (hrn, in);
  guint8 y;
  gst_buffer_extract (out, 0, &y, 1);
  fail_unless_equals_int (y, 0x40);
  gst_buffer_unref (out);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

/* A net input too large to be sensible is refused up front with a STREAM
 * error that names the limit -- not an "out of memory" from deep inside. */
GST_START_TEST (test_oversized_net_refused)
{
  GstHarness *hrn = gst_harness_new ("colorize");
  GstBus *bus = gst_bus_new ();
  gst_element_set_bus (hrn->element, bus);
  g_object_set (hrn->element, "net-size", 2048, NULL);
  gst_harness_set_src_caps (hrn, video_caps ("GRAY8", 4097, 3));
  GstVideoInfo info;
  gst_video_info_set_format (&info, GST_VIDEO_FORMAT_GRAY8, 4097, 3);
  fail_if (gst_harness_push (hrn, pattern_buffer (&info, 0)) == GST_FLOW_OK);
  GstMessage *msg = gst_bus_pop_filtered (bus, GST_MESSAGE_ERROR);
  fail_unless (msg != NULL);
  GError *err = NULL;
  gchar *debug = NULL;
  gst_message_parse_error (msg, &err, &debug);
  fail_unless (err->domain == GST_STREAM_ERROR, "%s", err->message);
  fail_unless (strstr (debug, "limit") && strstr (debug, "4097x3"), "%s",
      debug);
  g_error_free (err);
  g_free (debug);
  gst_message_unref (msg);
  gst_element_set_bus (hrn->element, NULL);
  gst_object_unref (bus);
  gst_harness_teardown (hrn);
}

GST_END_TEST;

typedef struct
{
  GstElement *element;
  gint stop;
} Poller;

static gpointer
poll_properties (gpointer data)
{
  Poller *p = data;
  while (!g_atomic_int_get (&p->stop)) {
    gdouble t, s;
    guint n;
    gchar *model;
    g_object_get (p->element, "temperature", &t, "saturation", &s,
        "net-size", &n, "model-file", &model, NULL);
    fail_unless (t > 0.0);
    g_free (model);
    g_object_set (p->element, "saturation", 1.0, "smoothing", 0.2, NULL);
  }
  return NULL;
}

/* Two threads read and write properties while the element goes READY <->
 * PAUSED and back: stop() frees the model that get_property used to read
 * without the lock (a use-after-free under ASan). */
GST_START_TEST (test_properties_across_state_changes)
{
  GstElement *e = gst_element_factory_make ("colorize", NULL);
  Poller p = { e, 0 };
  GThread *a = g_thread_new ("poll-a", poll_properties, &p);
  GThread *b = g_thread_new ("poll-b", poll_properties, &p);
  for (gint i = 0; i < 60; i++) {
    fail_unless (gst_element_set_state (e, GST_STATE_PAUSED) !=
        GST_STATE_CHANGE_FAILURE);
    fail_unless_equals_int (gst_element_set_state (e, GST_STATE_READY),
        GST_STATE_CHANGE_SUCCESS);
  }
  g_atomic_int_set (&p.stop, 1);
  g_thread_join (a);
  g_thread_join (b);
  gst_element_set_state (e, GST_STATE_NULL);
  gst_object_unref (e);
}

GST_END_TEST;

static Suite *
colorize_suite (void)
{
  Suite *s = suite_create ("colorize");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_gray_to_every_output);
  tcase_add_test (tc, test_colour_formats_same_out);
  tcase_add_test (tc, test_refuses_other_conversions);
  tcase_add_test (tc, test_odd_sizes);
  tcase_add_test (tc, test_timestamps_and_flags);
  tcase_add_test (tc, test_missing_or_corrupt_model);
  tcase_add_test (tc, test_state_cycling);
  tcase_add_test (tc, test_caps_change);
  tcase_add_test (tc, test_settings_act);
  tcase_add_test (tc, test_smoothing_and_scene_cut);
  tcase_add_test (tc, test_smoothing_lets_go_where_it_moves);
  tcase_add_test (tc, test_smoothing_holds_when_the_whole_frame_moves);
  tcase_add_test (tc, test_properties_from_another_thread);
  tcase_add_test (tc, test_ready_only_properties);
  tcase_add_test (tc, test_colorimetry_kept);
  tcase_add_test (tc, test_oversized_net_refused);
  tcase_add_test (tc, test_properties_across_state_changes);
  return s;
}

GST_CHECK_MAIN (colorize);
