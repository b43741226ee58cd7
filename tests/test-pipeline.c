/* End to end: examples/film.sh (gst-launch-1.0) decodes the whole shipped
 * gray clip, colours it and encodes it; the result is decoded again and must
 * hold as many frames, of the same size, visibly coloured where the input
 * was gray.  (The whole clip: cutting it with FRAMES=N goes through
 * identity eos-after, which let one frame too many through once in a
 * loaded run.) */
#include <string.h>

#include <glib/gstdio.h>
#include <gst/app/gstappsink.h>
#include <gst/check/gstcheck.h>
#include <gst/video/video.h>

#define ALL_FRAMES G_MAXINT

typedef struct
{
  gint frames, width, height;
  gdouble chroma;               /* mean max(R,G,B) - min(R,G,B) */
} Decoded;

static Decoded
decode (const gchar * path, gint max_frames)
{
  gchar *desc = g_strdup_printf ("filesrc location=\"%s\" ! decodebin ! "
      "videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
      path);
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc, &err);
  fail_unless (p != NULL, "%s", err ? err->message : "");
  GstElement *sink = gst_bin_get_by_name (GST_BIN (p), "sink");
  fail_unless_equals_int (gst_element_set_state (p, GST_STATE_PLAYING),
      GST_STATE_CHANGE_ASYNC);
  Decoded d = { 0, 0, 0, 0.0 };
  GstSample *s;
  gdouble sum = 0.0;
  while (d.frames < max_frames
      && (s = gst_app_sink_pull_sample (GST_APP_SINK (sink)))) {
    GstVideoInfo info;
    GstVideoFrame f;
    fail_unless (gst_video_info_from_caps (&info, gst_sample_get_caps (s)));
    fail_unless (gst_video_frame_map (&f, &info, gst_sample_get_buffer (s),
            GST_MAP_READ));
    d.width = info.width;
    d.height = info.height;
    gdouble frame = 0.0;
    for (gint y = 0; y < info.height; y++) {
      const guint8 *row = (const guint8 *) GST_VIDEO_FRAME_PLANE_DATA (&f, 0)
          + y * GST_VIDEO_FRAME_PLANE_STRIDE (&f, 0);
      for (gint x = 0; x < info.width; x++) {
        const guint8 *px = row + 3 * x;
        frame += MAX (MAX (px[0], px[1]), px[2])
            - MIN (MIN (px[0], px[1]), px[2]);
      }
    }
    sum += frame / (info.width * info.height);
    gst_video_frame_unmap (&f);
    gst_sample_unref (s);
    d.frames++;
  }
  d.chroma = d.frames ? sum / d.frames : 0.0;
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (sink);
  gst_object_unref (p);
  g_free (desc);
  return d;
}

GST_START_TEST (test_film_example)
{
  /* film.sh runs gst-launch-1.0, which cannot load a plugin built with
   * ASan; the sanitizer suite (tests/run.sh) covers the element in-process */
  if (g_getenv ("CZ_SANITIZE")) {
    GST_INFO ("skipped under the sanitizers");
    return;
  }
  const gchar *src = g_getenv ("CZ_SOURCE_ROOT");
  fail_unless (src != NULL);
  gchar *clip = g_build_filename (src, "examples", "data", "tree-gray.webm",
      NULL);
  gchar *script = g_build_filename (src, "examples", "film.sh", NULL);
  gchar *dir = g_dir_make_tmp ("colorize-film-XXXXXX", NULL);
  gchar *out = g_build_filename (dir, "tree-colour.webm", NULL);
  gchar *argv[] = { (gchar *) "bash", script, clip, out, NULL };
  gchar **envp = g_environ_unsetenv (g_get_environ (), "FRAMES");
  gint status = -1;
  gchar *err_text = NULL;
  GError *err = NULL;
  fail_unless (g_spawn_sync (NULL, argv, envp, G_SPAWN_SEARCH_PATH, NULL,
          NULL, NULL, &err_text, &status, &err), "%s", err ? err->message : "");
  fail_unless (g_spawn_check_wait_status (status, NULL), "film.sh failed: %s",
      err_text);

  Decoded in = decode (clip, ALL_FRAMES);
  Decoded res = decode (out, ALL_FRAMES);
  fail_unless (in.frames > 30, "only %d frames in the shipped clip", in.frames);
  fail_unless_equals_int (res.frames, in.frames);
  fail_unless_equals_int (res.width, in.width);
  fail_unless_equals_int (res.height, in.height);
  GST_INFO ("chroma in %.2f, out %.2f", in.chroma, res.chroma);
  fail_unless (in.chroma < 2.0, "the shipped clip is not gray: %f", in.chroma);
  fail_unless (res.chroma > 4.0, "output is not coloured: mean chroma %.2f",
      res.chroma);

  g_unlink (out);
  g_rmdir (dir);
  g_strfreev (envp);
  g_free (err_text);
  g_free (clip);
  g_free (script);
  g_free (dir);
  g_free (out);
}

GST_END_TEST;

/* Every frame of every appsink named s0, s1, ... in a pipeline, as bytes. */
typedef struct
{
  GPtrArray *frames[8];         /* GBytes */
} Collected;

static GstFlowReturn
on_sample (GstAppSink * sink, gpointer user_data)
{
  GPtrArray *frames = user_data;
  GstSample *s = gst_app_sink_pull_sample (sink);
  GstBuffer *buf = gst_sample_get_buffer (s);
  GstMapInfo map;
  fail_unless (gst_buffer_map (buf, &map, GST_MAP_READ));
  g_ptr_array_add (frames, g_bytes_new (map.data, map.size));
  gst_buffer_unmap (buf, &map);
  gst_sample_unref (s);
  return GST_FLOW_OK;
}

/* The shipped gray clip through a tee into one colorize branch per entry of
 * n_threads (all in one pipeline, so the branches run concurrently in their
 * own streaming threads); returns each branch's frames. */
static Collected
colour_branches (const gchar * backend, const guint * n_threads, gint n)
{
  const gchar *src = g_getenv ("CZ_SOURCE_ROOT");
  fail_unless (src != NULL);
  gchar *clip = g_build_filename (src, "examples", "data", "tree-gray.webm",
      NULL);
  GString *desc = g_string_new (NULL);
  g_string_printf (desc, "filesrc location=\"%s\" ! decodebin ! videoconvert "
      "! video/x-raw,format=GRAY8 ! tee name=t", clip);
  for (gint i = 0; i < n; i++)
    g_string_append_printf (desc, " t. ! queue ! colorize backend=%s "
        "n-threads=%u ! video/x-raw,format=RGB ! appsink name=s%d sync=false",
        backend, n_threads[i], i);
  GError *err = NULL;
  GstElement *p = gst_parse_launch (desc->str, &err);
  fail_unless (p != NULL, "%s", err ? err->message : "");
  Collected c = { {0}
  };
  for (gint i = 0; i < n; i++) {
    gchar name[8];
    g_snprintf (name, sizeof name, "s%d", i);
    GstElement *sink = gst_bin_get_by_name (GST_BIN (p), name);
    GstAppSinkCallbacks cb = { NULL, NULL, on_sample };
    c.frames[i] = g_ptr_array_new_with_free_func ((GDestroyNotify)
        g_bytes_unref);
    gst_app_sink_set_callbacks (GST_APP_SINK (sink), &cb, c.frames[i], NULL);
    gst_object_unref (sink);
  }
  GstBus *bus = gst_element_get_bus (p);
  fail_unless (gst_element_set_state (p, GST_STATE_PLAYING) !=
      GST_STATE_CHANGE_FAILURE);
  GstMessage *m = gst_bus_timed_pop_filtered (bus, GST_CLOCK_TIME_NONE,
      GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  fail_unless (GST_MESSAGE_TYPE (m) == GST_MESSAGE_EOS, "pipeline error");
  gst_message_unref (m);
  gst_element_set_state (p, GST_STATE_NULL);
  gst_object_unref (bus);
  gst_object_unref (p);
  g_string_free (desc, TRUE);
  g_free (clip);
  return c;
}

static void
collected_free (Collected * c)
{
  for (guint i = 0; i < G_N_ELEMENTS (c->frames); i++)
    if (c->frames[i])
      g_ptr_array_unref (c->frames[i]);
}

/* Which frame of a differs from b, or -1. */
static gint
first_difference (GPtrArray * a, GPtrArray * b)
{
  fail_unless_equals_int (a->len, b->len);
  for (guint i = 0; i < a->len; i++)
    if (!g_bytes_equal (g_ptr_array_index (a, i), g_ptr_array_index (b, i)))
      return (gint) i;
  return -1;
}

/* Several colorize elements in one process, each with its own thread count,
 * give the bytes each gives alone: nothing process-wide (a BLAS thread
 * count, a shared buffer) leaks from one to another.  Output is also the
 * same for every thread count.  On the OpenBLAS backend and on the
 * automatic one (oneDNN where built). */
GST_START_TEST (test_tee_branches_match_standalone)
{
  static const guint threads[] = { 1, 2, 3 };
  static const gchar *backends[] = { "openblas", "auto" };
  for (guint b = 0; b < G_N_ELEMENTS (backends); b++) {
    Collected alone[3];
    for (gint i = 0; i < 3; i++)
      alone[i] = colour_branches (backends[b], &threads[i], 1);
    fail_unless (alone[0].frames[0]->len > 30);
    for (gint i = 1; i < 3; i++)
      fail_unless_equals_int (first_difference (alone[i].frames[0],
              alone[0].frames[0]), -1);
    for (gint run = 0; run < 2; run++) {
      Collected tee = colour_branches (backends[b], threads, 3);
      for (gint i = 0; i < 3; i++) {
        gint bad = first_difference (tee.frames[i], alone[i].frames[0]);
        fail_unless (bad < 0, "%s, run %d: branch with n-threads=%u differs "
            "from its standalone run at frame %d", backends[b], run,
            threads[i], bad);
      }
      collected_free (&tee);
    }
    for (gint i = 0; i < 3; i++)
      collected_free (&alone[i]);
  }
}

GST_END_TEST;

static Suite *
pipeline_suite (void)
{
  Suite *s = suite_create ("pipeline");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_film_example);
  tcase_add_test (tc, test_tee_branches_match_standalone);
  return s;
}

GST_CHECK_MAIN (pipeline);
