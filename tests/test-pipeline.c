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

static Suite *
pipeline_suite (void)
{
  Suite *s = suite_create ("pipeline");
  TCase *tc = tcase_create ("general");
  tcase_set_timeout (tc, 300);
  suite_add_tcase (s, tc);
  tcase_add_test (tc, test_film_example);
  return s;
}

GST_CHECK_MAIN (pipeline);
