/* gst-colorize-film: colour a whole film file the way an archive would.
 *
 *   gst-colorize-film [OPTIONS] IN OUT
 *
 * The first video stream is decoded, coloured by the colorize element and
 * encoded (lossless FFV1 by default); every audio and subtitle stream is
 * copied as it is, packet for packet, without decoding; frame rate, size,
 * pixel aspect, timestamps and chapters are kept; the result is Matroska.
 * Progress (percent, frames/s, ETA) goes to stderr.  OUT is written under a
 * temporary name beside it and renamed when complete: a failure (unreadable
 * input, missing model, full disk, Ctrl-C) leaves no file under OUT's name
 * and exits non-zero.
 *
 * Scale-out: --chunk K/N colours the K-th of N equal time ranges of the
 * film.  Decoding starts at the keyframe before the range minus --warm-up
 * seconds (by default as many frames as smoothing needs to forget what came
 * before to the last bit), so that the seam does not show; the warm-up
 * frames are coloured but not written, and every audio and subtitle packet
 * goes to the chunk its timestamp falls in.  Chunks keep the film's own
 * timestamps, and --join OUT CHUNK... puts them together without decoding:
 *
 *   gst-colorize-film --chunk 2/3 film.mkv part2.mkv
 *   gst-colorize-film --join film-colour.mkv part1.mkv part2.mkv part3.mkv */
#define _POSIX_C_SOURCE 200809L /* getpid */

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib-unix.h>
#include <glib/gstdio.h>
#include <gst/gst.h>

typedef struct
{
  /* options */
  gchar *encoder;               /* ffv1, h264, vp9, or a launch description */
  gchar *chroma;                /* format the encoder gets: Y444, I420 */
  gchar *colorize_props;        /* "name=value ..." for the element */
  gboolean quiet;

  /* --chunk K/N: the frames with start <= pts < stop are written (stop -1:
   * to the end); the streams' segments are rebased so that running time is
   * the film's own time */
  gint chunk_k, chunk_n;
  gint64 warm_up, start, stop;  /* ns; warm_up -1: from the smoothing */
  gdouble smoothing;
  GstPad *seek_pad;             /* the video stream out of parsebin */
  gint seeked;                  /* atomic: the chunk's seek has been sent */
  guint32 seek_seqnum;          /* set before seeked */
  const gchar *in;

  /* --join */
  GMutex join_lock;
  GPtrArray *joined;            /* Joined, one per stream */
  guint n_chunks, chunks_ready;

  GstElement *pipeline, *mux;
  gboolean have_video;
  GMutex lock;                  /* streaming thread -> progress report */
  guint64 frames;
  gint64 position;              /* pts of the last frame coloured, ns */
  gint64 started;               /* monotonic, us */
  gint exit_code;
  GMainLoop *loop;
  gchar *partial;
} Film;

static const struct
{
  const gchar *name, *desc, *needs;
} encoders[] = {
  /* every frame a keyframe, so that any frame can start a chunk; avenc_ffv1
   * of GStreamer 1.22 names the caps field "ffvversion", matroskamux wants
   * "ffversion" */
  {"ffv1", "avenc_ffv1 context=1 gop-size=1 ! "
        "capssetter caps=\"video/x-ffv,ffversion=(int)1\"",
      "gstreamer1.0-libav"},
  {"h264", "x264enc speed-preset=medium tune=film pass=quant quantizer=18",
      "gstreamer1.0-plugins-ugly"},
  {"vp9", "vp9enc deadline=1 cpu-used=4 end-usage=cq cq-level=20 threads=4",
      "gstreamer1.0-plugins-good"},
};

static const gchar *
encoder_desc (const gchar * name, const gchar ** needs)
{
  for (guint i = 0; i < G_N_ELEMENTS (encoders); i++)
    if (!g_strcmp0 (name, encoders[i].name)) {
      *needs = encoders[i].needs;
      return encoders[i].desc;
    }
  *needs = NULL;
  return name;                  /* a launch description of the user's */
}

static GstElement *
make_bin (const gchar * desc, GError ** err)
{
  return gst_parse_bin_from_description (desc, TRUE, err);
}

/* Queues on every stream between the demuxer and the muxer hold 10 s: the
 * muxer waits for a packet (or a gap) on each stream, and matroskademux
 * sends a sparse stream's gap only once the others are 3 s ahead of it --
 * with 2 s queues a subtitle track stalled the film at its first frames. */

/* The best decoder for coded video of these caps, or NULL. */
static gchar *
decoder_for (GstCaps * caps)
{
  GList *all = gst_element_factory_list_get_elements
      (GST_ELEMENT_FACTORY_TYPE_DECODER | GST_ELEMENT_FACTORY_TYPE_MEDIA_VIDEO,
      GST_RANK_MARGINAL);
  GList *fit = gst_element_factory_list_filter (all, caps, GST_PAD_SINK,
      FALSE);
  fit = g_list_sort (fit, gst_plugin_feature_rank_compare_func);
  gchar *name = fit ? g_strdup (GST_OBJECT_NAME (fit->data)) : NULL;
  gst_plugin_feature_list_free (fit);
  gst_plugin_feature_list_free (all);
  return name;
}

/* The chain a video stream goes through: decode, colour, encode.  The
 * decoder is picked here rather than by decodebin, so that every link is
 * static and the coded caps are accepted when they arrive. */
static GstElement *
video_chain (Film * f, GstCaps * caps, GError ** err)
{
  const gchar *needs;
  const gchar *enc = encoder_desc (f->encoder, &needs);
  const gboolean raw = gst_structure_has_name (gst_caps_get_structure (caps,
          0), "video/x-raw");
  gchar *dec = raw ? g_strdup ("identity") : decoder_for (caps);
  if (!dec) {
    gchar *what = gst_caps_to_string (caps);
    g_set_error (err, GST_CORE_ERROR, GST_CORE_ERROR_MISSING_PLUGIN,
        "no decoder for %s (the libav plugins, gstreamer1.0-libav, decode "
        "most formats)", what);
    g_free (what);
    return NULL;
  }
  gchar *desc = g_strdup_printf ("queue max-size-time=10000000000 "
      "max-size-buffers=0 max-size-bytes=0 ! %s ! videoconvert ! "
      "colorize name=colorize %s ! videoconvert ! video/x-raw,format=%s ! %s "
      "! queue", dec, f->colorize_props, f->chroma, enc);
  GstElement *bin = make_bin (desc, err);
  if (!bin && needs)
    g_prefix_error (err, "encoder %s (package %s): ", f->encoder, needs);
  g_free (desc);
  g_free (dec);
  return bin;
}

/* Whether a buffer belongs to the chunk being written. */
static gboolean
in_chunk (Film * f, GstBuffer * buf)
{
  if (!f->chunk_n || !GST_BUFFER_PTS_IS_VALID (buf))
    return TRUE;
  const gint64 pts = (gint64) GST_BUFFER_PTS (buf);
  return pts >= f->start && (f->stop < 0 || pts < f->stop);
}

/* A segment event in a probe made to say running time = stream time
 * (forward playback): the film's own timestamps, whatever the segment's
 * start. */
static void
rebase_segment (GstPadProbeInfo * info)
{
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  const GstSegment *seg;
  gst_event_parse_segment (ev, &seg);
  if (seg->format != GST_FORMAT_TIME || seg->rate <= 0)
    return;
  GstSegment rebased = *seg;
  rebased.base = rebased.start;
  GstEvent *out = gst_event_new_segment (&rebased);
  gst_event_set_seqnum (out, gst_event_get_seqnum (ev));
  gst_event_unref (ev);
  info->data = out;
}

/* On every stream out of parsebin when a chunk is made: nothing passes
 * before the segment of the chunk's seek (what the demuxer sent from the
 * start of the film is dropped, its EOS too), that segment is rebased
 * (running time = the film's time, which the muxer writes), and audio and
 * subtitle packets outside the chunk are dropped. */
typedef struct
{
  Film *f;
  gboolean open, video;
} Gate;

static GstPadProbeReturn
gate (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Gate *g = user_data;
  if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
    if (!g->open)
      return GST_PAD_PROBE_DROP;
    return g->video || in_chunk (g->f, GST_PAD_PROBE_INFO_BUFFER (info)) ?
        GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
  }
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  switch (GST_EVENT_TYPE (ev)) {
    case GST_EVENT_EOS:
    case GST_EVENT_GAP:
      if (!g->open)
        return GST_PAD_PROBE_DROP;
      break;
    case GST_EVENT_SEGMENT:{
      const GstSegment *seg;
      gst_event_parse_segment (ev, &seg);
      if (g_atomic_int_get (&g->f->seeked)
          && gst_event_get_seqnum (ev) == g->f->seek_seqnum)
        g->open = TRUE;
      else
        return g->open ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
      rebase_segment (info);
      break;
    }
    default:
      break;
  }
  return GST_PAD_PROBE_OK;
}

/* Before colorize: the frames after the chunk (decoded because the seek
 * stops a second late, for reordered frames) are not coloured. */
static GstPadProbeReturn
drop_after_chunk (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Film *f = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  return f->stop >= 0 && GST_BUFFER_PTS_IS_VALID (buf)
      && (gint64) GST_BUFFER_PTS (buf) >= f->stop ?
      GST_PAD_PROBE_DROP : GST_PAD_PROBE_OK;
}

static GstPadProbeReturn
count_frame (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  Film *f = user_data;
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  /* a chunk's warm-up frames are coloured, not written */
  if (!in_chunk (f, buf))
    return GST_PAD_PROBE_DROP;
  /* progress is what has been coloured, not what has been read: the
   * queues before colorize hold seconds of input */
  g_mutex_lock (&f->lock);
  if (GST_BUFFER_PTS_IS_VALID (buf))
    f->position = (gint64) GST_BUFFER_PTS (buf);
  f->frames++;
  g_mutex_unlock (&f->lock);
  return GST_PAD_PROBE_OK;
}

static void
fail (Film * f, const gchar * fmt, ...)
G_GNUC_PRINTF (2, 3);

     static void fail (Film * f, const gchar * fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  gchar *msg = g_strdup_vprintf (fmt, ap);
  va_end (ap);
  g_printerr ("%sgst-colorize-film: %s\n", f->quiet ? "" : "\n", msg);
  g_free (msg);
  f->exit_code = 1;
  g_main_loop_quit (f->loop);
}

/* Matroska's UTF-8 text subtitles come out of matroskademux as Pango markup,
 * the text escaped (& < > " '), and matroskamux takes only plain UTF-8: turn
 * the markup back into the text it was made from, caps and buffers. */
static GstPadProbeReturn
markup_to_text (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
    GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
    if (GST_EVENT_TYPE (ev) == GST_EVENT_CAPS) {
      GstCaps *caps = gst_caps_new_simple ("text/x-raw", "format",
          G_TYPE_STRING, "utf8", NULL);
      info->data = gst_event_new_caps (caps);
      gst_caps_unref (caps);
      gst_event_unref (ev);
    }
    return GST_PAD_PROBE_OK;
  }
  GstBuffer *buf = GST_PAD_PROBE_INFO_BUFFER (info);
  GstMapInfo map;
  if (!gst_buffer_map (buf, &map, GST_MAP_READ))
    return GST_PAD_PROBE_OK;
  static const struct
  {
    const char *entity;
    char c;
  } entities[] = { {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'},
  {"&quot;", '"'}, {"&apos;", '\''}
  };
  GString *text = g_string_sized_new (map.size);
  for (gsize i = 0; i < map.size; i++) {
    guint e = 0;
    for (; e < G_N_ELEMENTS (entities); e++) {
      const gsize len = strlen (entities[e].entity);
      if (map.size - i >= len
          && !memcmp (map.data + i, entities[e].entity, len)) {
        g_string_append_c (text, entities[e].c);
        i += len - 1;
        break;
      }
    }
    if (e == G_N_ELEMENTS (entities))
      g_string_append_c (text, (char) map.data[i]);
  }
  gst_buffer_unmap (buf, &map);
  GstBuffer *out = gst_buffer_new_wrapped (g_memdup2 (text->str, text->len),
      text->len);
  gst_buffer_copy_into (out, buf, GST_BUFFER_COPY_METADATA, 0, -1);
  g_string_free (text, TRUE);
  gst_buffer_unref (buf);
  info->data = out;
  return GST_PAD_PROBE_OK;
}

static gboolean start_chunk (gpointer user_data);

/* When FROM carries Pango markup, a probe on AT makes it plain text. */
static void
text_from_markup (GstPad * from, GstPad * at)
{
  GstCaps *caps = gst_pad_get_current_caps (from);
  if (caps && !g_strcmp0 (gst_structure_get_string (gst_caps_get_structure
              (caps, 0), "format"), "pango-markup"))
    gst_pad_add_probe (at, GST_PAD_PROBE_TYPE_BUFFER |
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, markup_to_text, NULL, NULL);
  if (caps)
    gst_caps_unref (caps);
}

/* The warm-up a chunk needs when none is given: the past's weight in the
 * smoothed colour falls by at least `smoothing` per frame (less where
 * smoothing-motion lets go, and to 0 at a scene cut), so after n frames with
 * smoothing^n < 2^-28 a chunk's colours are the single run's to the last
 * bit (bench/bench-seam.py: at smoothing 0.9 and 30 frames/s, 5 s left 1
 * frame 2 levels off, 6 s none; this gives 6.1 s).  The frame rate comes
 * from the coded stream's caps, 25 frames/s where they have none. */
static gint64
auto_warm_up (gdouble smoothing, const GstCaps * caps)
{
  if (!(smoothing > 0.0))
    return 0;
  gint num = 0, den = 0;
  if (!gst_structure_get_fraction (gst_caps_get_structure (caps, 0),
          "framerate", &num, &den) || num <= 0 || den <= 0) {
    num = 25;
    den = 1;
  }
  const gdouble frames = ceil (-28.0 * G_LN2 / log (MIN (smoothing, 0.99)));
  return (gint64) gst_util_uint64_scale ((guint64) frames * GST_SECOND, den,
      num);
}

/* A stream found in the input: the first video stream is coloured, audio and
 * subtitles go to the muxer as they are; anything else is left out. */
static void
on_pad_added (GstElement * parsebin, GstPad * pad, gpointer user_data)
{
  Film *f = user_data;
  GstCaps *caps = gst_pad_get_current_caps (pad);
  if (!caps)
    caps = gst_pad_query_caps (pad, NULL);
  gchar *kind = g_strdup (gst_structure_get_name (gst_caps_get_structure (caps,
              0)));
  const gboolean video = g_str_has_prefix (kind, "video/")
      || g_str_has_prefix (kind, "image/");
  const gboolean audio = g_str_has_prefix (kind, "audio/");
  const gboolean text = g_str_has_prefix (kind, "subtitle/")
      || g_str_has_prefix (kind, "text/")
      || g_str_has_prefix (kind, "application/x-ssa")
      || g_str_has_prefix (kind, "application/x-ass")
      || g_str_has_prefix (kind, "application/x-subtitle");
  GError *err = NULL;
  GstElement *chain = NULL;
  const gchar *templ = NULL;

  const gboolean first_video = video && !f->have_video;
  if (first_video) {
    if (f->warm_up < 0)
      f->warm_up = auto_warm_up (f->smoothing, caps);
    chain = video_chain (f, caps, &err);
    templ = "video_%u";
    f->have_video = TRUE;
  } else if (audio || text) {
    chain = make_bin ("queue max-size-time=10000000000 max-size-buffers=0 "
        "max-size-bytes=0", &err);
    templ = audio ? "audio_%u" : "subtitle_%u";
  } else {
    g_printerr ("gst-colorize-film: leaving out a stream of %s\n", kind);
    gst_caps_unref (caps);
    g_free (kind);
    return;
  }
  gst_caps_unref (caps);
  if (!chain) {
    fail (f, "%s", err->message);
    g_error_free (err);
    g_free (kind);
    return;
  }
  gst_bin_add (GST_BIN (f->pipeline), chain);
  GstPad *in = gst_element_get_static_pad (chain, "sink");
  GstPad *out = gst_element_get_static_pad (chain, "src");
  GstPad *mux_pad = gst_element_request_pad_simple (f->mux, templ);
  if (text)
    text_from_markup (pad, in);
  if (first_video) {
    GstElement *cz = gst_bin_get_by_name (GST_BIN (chain), "colorize");
    GstPad *cz_src = gst_element_get_static_pad (cz, "src");
    gst_pad_add_probe (cz_src, GST_PAD_PROBE_TYPE_BUFFER, count_frame, f, NULL);
    gst_object_unref (cz_src);
    if (f->chunk_n) {
      GstPad *cz_sink = gst_element_get_static_pad (cz, "sink");
      gst_pad_add_probe (cz_sink, GST_PAD_PROBE_TYPE_BUFFER, drop_after_chunk,
          f, NULL);
      gst_object_unref (cz_sink);
      f->seek_pad = gst_object_ref (pad);
      /* parsebin exposes all its streams before it lets data through */
      g_idle_add (start_chunk, f);
    }
    gst_object_unref (cz);
  }
  if (f->chunk_n) {
    Gate *g = g_new0 (Gate, 1);
    g->f = f;
    g->video = first_video;
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_BUFFER |
        GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM | GST_PAD_PROBE_TYPE_EVENT_FLUSH,
        gate, g, g_free);
  }
  /* Caps are settled when the streams flow (decodebin takes the coded
   * video, the probe above turns markup into text): a caps check at link
   * time would ask elements that cannot answer yet. */
  gst_element_sync_state_with_parent (chain);
  const GstPadLinkReturn to_mux = mux_pad ? gst_pad_link_full (out, mux_pad,
      GST_PAD_LINK_CHECK_HIERARCHY) : GST_PAD_LINK_REFUSED;
  const GstPadLinkReturn from_input = to_mux == GST_PAD_LINK_OK ?
      gst_pad_link_full (pad, in, GST_PAD_LINK_CHECK_HIERARCHY) :
      GST_PAD_LINK_REFUSED;
  if (to_mux != GST_PAD_LINK_OK)
    fail (f, "the muxer takes no stream of %s (%s)", kind,
        gst_pad_link_get_name (to_mux));
  else if (from_input != GST_PAD_LINK_OK)
    fail (f, "cannot take the stream of %s (%s)", kind,
        gst_pad_link_get_name (from_input));
  if (mux_pad)
    gst_object_unref (mux_pad);
  gst_object_unref (in);
  gst_object_unref (out);
  g_free (kind);
}

/* H:MM:SS of a time, written into the caller's buffer. */
typedef gchar ClockText[32];

static const gchar *
clock_text (gint64 ns, ClockText buf)
{
  const gint64 s = ns / GST_SECOND;
  g_snprintf (buf, sizeof (ClockText), "%" G_GINT64_FORMAT ":%02d:%02d",
      s / 3600, (int) (s / 60 % 60), (int) (s % 60));
  return buf;
}

/* The chunk's range, from the film's duration, and the seek to its warm-up
 * (main thread: a flushing seek from a streaming thread would deadlock). */
static gboolean
start_chunk (gpointer user_data)
{
  Film *f = user_data;
  gint64 dur = -1;
  if (!gst_pad_query_duration (f->seek_pad, GST_FORMAT_TIME, &dur) || dur <= 0) {
    fail (f, "%s does not say how long it is, which --chunk needs", f->in);
    return G_SOURCE_REMOVE;
  }
  f->start = (gint64) gst_util_uint64_scale (dur, f->chunk_k - 1, f->chunk_n);
  f->stop = f->chunk_k == f->chunk_n ? -1 :
      (gint64) gst_util_uint64_scale (dur, f->chunk_k, f->chunk_n);
  const gint64 from = MAX (0, f->start - f->warm_up);
  if (!f->quiet) {
    ClockText a, b, c;
    g_printerr ("chunk %d/%d: %s to %s, decoded from %s or the keyframe "
        "before (warm-up %.1f s)\n", f->chunk_k, f->chunk_n,
        clock_text (f->start, a), clock_text (f->stop < 0 ? dur : f->stop, b),
        clock_text (from, c), (double) f->warm_up / GST_SECOND);
  }
  GstEvent *seek = gst_event_new_seek (1.0, GST_FORMAT_TIME,
      GST_SEEK_FLAG_FLUSH | GST_SEEK_FLAG_KEY_UNIT | GST_SEEK_FLAG_SNAP_BEFORE,
      GST_SEEK_TYPE_SET, from, GST_SEEK_TYPE_SET,
      (f->stop < 0 ? dur : f->stop) + GST_SECOND);
  /* the seek stops a second late, for frames decoded out of order, and
   * the last chunk's a second after the end: matroskademux would stop at
   * its duration, which can be the last packet's timestamp (Opus); the
   * streams' segments after the seek carry its seqnum */
  f->seek_seqnum = gst_event_get_seqnum (seek);
  g_atomic_int_set (&f->seeked, 1);
  if (!gst_pad_send_event (f->seek_pad, seek))
    fail (f, "cannot seek in %s, which --chunk needs", f->in);
  return G_SOURCE_REMOVE;
}

static void
on_no_more_pads (GstElement * parsebin, gpointer user_data)
{
  Film *f = user_data;
  if (!f->have_video)
    fail (f, "the input has no video stream");
}

static gboolean
report_progress (gpointer user_data)
{
  Film *f = user_data;
  gint64 dur = -1;
  g_mutex_lock (&f->lock);
  const gint64 pos = f->position;
  const guint64 frames = f->frames;
  g_mutex_unlock (&f->lock);
  if (!gst_element_query_duration (f->pipeline, GST_FORMAT_TIME, &dur)
      || dur <= 0 || (f->chunk_n && !g_atomic_int_get (&f->seeked)))
    return G_SOURCE_CONTINUE;
  /* a chunk: the part of its range done */
  const gint64 from = f->chunk_n ? f->start : 0;
  const gint64 to = f->chunk_n && f->stop >= 0 ? f->stop : dur;
  const double elapsed = (g_get_monotonic_time () - f->started) / 1e6;
  const double done = CLAMP ((double) (pos - from) / MAX (to - from, 1), 0.0,
      1.0);
  ClockText at, all, eta;
  g_printerr ("\r%5.1f %%  %s of %s  %" G_GUINT64_FORMAT " frames  %.1f "
      "frames/s  ETA %s   ", 100.0 * done, clock_text (pos, at),
      clock_text (to, all), frames, elapsed > 0 ? frames / elapsed : 0.0,
      done > 0.0 ? clock_text ((gint64) (elapsed * (1.0 - done) / done
              * GST_SECOND), eta) : "?");
  return G_SOURCE_CONTINUE;
}

static gboolean
on_message (GstBus * bus, GstMessage * msg, gpointer user_data)
{
  Film *f = user_data;
  switch (GST_MESSAGE_TYPE (msg)) {
    case GST_MESSAGE_ERROR:{
      GError *err = NULL;
      gchar *debug = NULL;
      gst_message_parse_error (msg, &err, &debug);
      fail (f, "%s: %s%s%s", GST_OBJECT_NAME (GST_MESSAGE_SRC (msg)),
          err->message, debug ? "\n  " : "", debug ? debug : "");
      g_error_free (err);
      g_free (debug);
      break;
    }
    case GST_MESSAGE_EOS:
      g_main_loop_quit (f->loop);
      break;
    default:
      break;
  }
  return TRUE;
}

static gboolean
on_interrupt (gpointer user_data)
{
  Film *f = user_data;
  fail (f, "interrupted");
  f->exit_code = 130;
  return G_SOURCE_REMOVE;
}

/* --join: each stream of the chunks goes through a concat element (which
 * plays its inputs one after the other, here in the chunks' order) into the
 * muxer; the chunks carry the film's own timestamps, so concat must not
 * rebase them. */
typedef struct
{
  gchar *name;                  /* the demuxer's pad name: video_0, audio_1... */
  GstPad **sinks;               /* concat's inputs, one per chunk */
} Joined;

typedef struct
{
  Film *f;
  guint index;
} JoinInput;

static void
joined_free (gpointer data)
{
  Joined *j = data;
  for (guint i = 0; j->sinks && j->sinks[i]; i++)
    gst_object_unref (j->sinks[i]);
  g_free (j->sinks);
  g_free (j->name);
  g_free (j);
}

/* The concat of stream NAME, made on the first chunk that has it. */
static Joined *
joined_stream (Film * f, const gchar * name, GError ** err)
{
  for (guint i = 0; i < f->joined->len; i++) {
    Joined *j = g_ptr_array_index (f->joined, i);
    if (!g_strcmp0 (j->name, name))
      return j;
  }
  const gchar *kind = g_str_has_prefix (name, "video") ? "video_%u" :
      g_str_has_prefix (name, "audio") ? "audio_%u" :
      g_str_has_prefix (name, "subtitle") ? "subtitle_%u" : NULL;
  GstPad *mux_pad = kind ? gst_element_request_pad_simple (f->mux, kind) : NULL;
  if (!mux_pad) {
    g_set_error (err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
        "the muxer takes no stream %s (it was written after the muxer began)",
        name);
    return NULL;
  }
  GstElement *concat = gst_element_factory_make ("concat", NULL);
  GstElement *queue = gst_element_factory_make ("queue", NULL);
  g_object_set (concat, "adjust-base", FALSE, NULL);
  g_object_set (queue, "max-size-time", 10 * GST_SECOND, "max-size-buffers",
      0, "max-size-bytes", 0, NULL);
  gst_bin_add_many (GST_BIN (f->pipeline), concat, queue, NULL);
  gst_element_link (concat, queue);
  GstPad *q_src = gst_element_get_static_pad (queue, "src");
  gst_pad_link (q_src, mux_pad);
  gst_object_unref (q_src);
  gst_object_unref (mux_pad);
  Joined *j = g_new0 (Joined, 1);
  j->name = g_strdup (name);
  j->sinks = g_new0 (GstPad *, f->n_chunks + 1);
  for (guint i = 0; i < f->n_chunks; i++)       /* in the order played */
    j->sinks[i] = gst_element_request_pad_simple (concat, "sink_%u");
  gst_element_sync_state_with_parent (queue);
  gst_element_sync_state_with_parent (concat);
  g_ptr_array_add (f->joined, j);
  return j;
}

/* On each stream of a chunk: its segment rebased (a chunk's segment starts
 * at its first timestamp, and the chunks keep the film's timestamps); and
 * matroskademux of GStreamer 1.22 gives FFV1 the caps field "ffvversion" (as
 * avenc_ffv1 does), where matroskamux wants "ffversion". */
static GstPadProbeReturn
chunk_stream (GstPad * pad, GstPadProbeInfo * info, gpointer user_data)
{
  GstEvent *ev = GST_PAD_PROBE_INFO_EVENT (info);
  if (GST_EVENT_TYPE (ev) == GST_EVENT_SEGMENT)
    rebase_segment (info);
  if (GST_EVENT_TYPE (ev) != GST_EVENT_CAPS)
    return GST_PAD_PROBE_OK;
  GstCaps *caps;
  gst_event_parse_caps (ev, &caps);
  const GstStructure *st = gst_caps_get_structure (caps, 0);
  gint version;
  if (!gst_structure_has_name (st, "video/x-ffv")
      || !gst_structure_get_int (st, "ffvversion", &version)
      || gst_structure_has_field (st, "ffversion"))
    return GST_PAD_PROBE_OK;
  GstCaps *fixed = gst_caps_copy (caps);
  GstStructure *fst = gst_caps_get_structure (fixed, 0);
  gst_structure_remove_field (fst, "ffvversion");
  gst_structure_set (fst, "ffversion", G_TYPE_INT, version, NULL);
  info->data = gst_event_new_caps (fixed);
  gst_caps_unref (fixed);
  gst_event_unref (ev);
  return GST_PAD_PROBE_OK;
}

static void
on_join_pad_added (GstElement * demux, GstPad * pad, gpointer user_data)
{
  JoinInput *in = user_data;
  Film *f = in->f;
  GError *err = NULL;
  g_mutex_lock (&f->join_lock);
  Joined *j = joined_stream (f, GST_PAD_NAME (pad), &err);
  if (j) {
    text_from_markup (pad, pad);
    gst_pad_add_probe (pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM, chunk_stream,
        NULL, NULL);
    /* caps are checked when they flow: the probes above change them */
    if (gst_pad_link_full (pad, j->sinks[in->index],
            GST_PAD_LINK_CHECK_HIERARCHY) != GST_PAD_LINK_OK)
      g_set_error (&err, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION,
          "chunk %u: cannot join its stream %s", in->index + 1,
          GST_PAD_NAME (pad));
  }
  g_mutex_unlock (&f->join_lock);
  if (err) {
    fail (f, "%s", err->message);
    g_error_free (err);
  }
}

/* When every chunk has shown its streams: each must have them all, or
 * concat would wait for ever on the missing one. */
static void
on_join_no_more_pads (GstElement * demux, gpointer user_data)
{
  JoinInput *in = user_data;
  Film *f = in->f;
  gchar *missing = NULL;
  g_mutex_lock (&f->join_lock);
  if (++f->chunks_ready == f->n_chunks)
    for (guint i = 0; i < f->joined->len && !missing; i++) {
      Joined *j = g_ptr_array_index (f->joined, i);
      for (guint c = 0; c < f->n_chunks && !missing; c++)
        if (!gst_pad_is_linked (j->sinks[c]))
          missing = g_strdup_printf ("chunk %u has no stream %s: chunks to "
              "join must come from one film (--chunk K/N)", c + 1, j->name);
    }
  g_mutex_unlock (&f->join_lock);
  if (missing) {
    fail (f, "%s", missing);
    g_free (missing);
  }
}

/* Appends NAME=VALUE for a colorize property given as an option. */
static void
add_prop (GString * props, const gchar * name, const gchar * value)
{
  if (value)
    g_string_append_printf (props, " %s=\"%s\"", name, value);
}

/* IN ! parsebin, the video coloured, the rest copied, ! matroskamux */
static gboolean
build_colour (Film * f, const gchar * in)
{
  GstElement *src = gst_element_factory_make ("filesrc", NULL);
  GstElement *parse = gst_element_factory_make ("parsebin", NULL);
  if (!src || !parse)
    return FALSE;
  g_object_set (src, "location", in, NULL);
  gst_bin_add_many (GST_BIN (f->pipeline), src, parse, NULL);
  gst_element_link (src, parse);
  g_signal_connect (parse, "pad-added", G_CALLBACK (on_pad_added), f);
  g_signal_connect (parse, "no-more-pads", G_CALLBACK (on_no_more_pads), f);
  return TRUE;
}

/* CHUNK ! matroskademux for each chunk, each stream through a concat. */
static gboolean
build_join (Film * f, gchar ** chunks, guint n, GPtrArray * inputs)
{
  f->n_chunks = n;
  f->joined = g_ptr_array_new_with_free_func (joined_free);
  for (guint i = 0; i < n; i++) {
    GstElement *src = gst_element_factory_make ("filesrc", NULL);
    GstElement *demux = gst_element_factory_make ("matroskademux", NULL);
    if (!src || !demux)
      return FALSE;
    g_object_set (src, "location", chunks[i], NULL);
    gst_bin_add_many (GST_BIN (f->pipeline), src, demux, NULL);
    gst_element_link (src, demux);
    JoinInput *in = g_new0 (JoinInput, 1);
    in->f = f;
    in->index = i;
    g_ptr_array_add (inputs, in);
    g_signal_connect (demux, "pad-added", G_CALLBACK (on_join_pad_added), in);
    g_signal_connect (demux, "no-more-pads",
        G_CALLBACK (on_join_no_more_pads), in);
  }
  return TRUE;
}

static gboolean
readable (const gchar * path)
{
  if (g_file_test (path, G_FILE_TEST_IS_REGULAR))
    return TRUE;
  g_printerr ("gst-colorize-film: cannot read %s: %s\n", path,
      g_file_test (path, G_FILE_TEST_EXISTS) ? "not a regular file" :
      "no such file");
  return FALSE;
}

int
main (int argc, char **argv)
{
  Film f = { 0 };
  g_mutex_init (&f.lock);
  g_mutex_init (&f.join_lock);
  gchar *model = NULL, *smoothing = NULL, *temperature = NULL;
  gchar *saturation = NULL, *net_size = NULL, *threads = NULL;
  gchar *backend = NULL, *precision = NULL, *scene = NULL, *motion = NULL;
  gchar *encoder = NULL, *chroma = NULL, *chunk = NULL;
  gdouble warm_up = -1.0;
  gboolean join = FALSE;
  GOptionEntry entries[] = {
    {"encoder", 'e', 0, G_OPTION_ARG_STRING, &encoder,
          "Video encoder: ffv1 (lossless, the default), h264 or vp9 (access "
          "copies), or a gst-launch description such as \"x264enc crf=20\"",
        "ENC"},
    {"chroma", 0, 0, G_OPTION_ARG_STRING, &chroma,
        "Pixel format the encoder gets: Y444 (default) or I420", "FMT"},
    {"model", 'm', 0, G_OPTION_ARG_FILENAME, &model,
        "The colorize element's model-file", "FILE"},
    {"smoothing", 's', 0, G_OPTION_ARG_STRING, &smoothing,
        "Temporal smoothing in [0, 0.99] (default 0.9 for film)", "A"},
    {"smoothing-motion", 0, 0, G_OPTION_ARG_STRING, &motion,
        "Lightness change at which a pixel's smoothing weight is halved "
          "(default 1; 0 = the same weight everywhere)", "M"},
    {"scene-threshold", 0, 0, G_OPTION_ARG_STRING, &scene,
        "Lightness change that counts as a scene cut", "X"},
    {"temperature", 't', 0, G_OPTION_ARG_STRING, &temperature,
        "Annealed-mean temperature", "T"},
    {"saturation", 0, 0, G_OPTION_ARG_STRING, &saturation,
        "Gain on the predicted chroma", "S"},
    {"net-size", 0, 0, G_OPTION_ARG_STRING, &net_size,
        "Short side the network sees (0 = the model's own)", "N"},
    {"threads", 'j', 0, G_OPTION_ARG_STRING, &threads,
        "Inference threads (0 = one per core)", "N"},
    {"backend", 0, 0, G_OPTION_ARG_STRING, &backend,
        "auto, openblas or onednn", "B"},
    {"precision", 0, 0, G_OPTION_ARG_STRING, &precision,
        "auto, fp32 or bf16", "P"},
    {"chunk", 'c', 0, G_OPTION_ARG_STRING, &chunk,
        "Colour only the K-th of N equal time ranges of the film (for many "
          "machines; put the chunks together with --join)", "K/N"},
    {"warm-up", 0, 0, G_OPTION_ARG_DOUBLE, &warm_up,
        "With --chunk: seconds coloured before the chunk, not written, so "
          "that smoothing is settled at the seam (default: the frames "
          "smoothing needs to match a single run to the last bit, 6 s at "
          "0.9 and 30 frames/s)", "S"},
    {"join", 0, 0, G_OPTION_ARG_NONE, &join,
        "gst-colorize-film --join OUT CHUNK...: put chunks made with --chunk "
          "together, in that order, without decoding them", NULL},
    {"quiet", 'q', 0, G_OPTION_ARG_NONE, &f.quiet, "No progress on stderr",
        NULL},
    {NULL}
  };
  GError *err = NULL;
  GOptionContext *ctx = g_option_context_new ("IN OUT  |  --join OUT CHUNK...");
  g_option_context_set_summary (ctx, "Colour a grayscale film: the video "
      "coloured by the colorize element, every audio and subtitle stream "
      "copied unchanged, into Matroska (lossless FFV1 by default).");
  g_option_context_add_main_entries (ctx, entries, NULL);
  g_option_context_add_group (ctx, gst_init_get_option_group ());
  const gboolean parsed = g_option_context_parse (ctx, &argc, &argv, &err);
  const gchar *usage = NULL;
  if (!parsed)
    usage = err->message;
  else if (join ? argc < 3 : argc != 3)
    usage = join ? "give OUT and the chunks" : "give IN and OUT";
  else if (join && chunk)
    usage = "--join takes no --chunk";
  else if (chunk && (sscanf (chunk, "%d/%d", &f.chunk_k, &f.chunk_n) != 2
          || f.chunk_n < 1 || f.chunk_k < 1 || f.chunk_k > f.chunk_n))
    usage = "--chunk wants K/N with 1 <= K <= N, e.g. 2/8";
  else if (warm_up != -1.0 && !(warm_up >= 0.0 && warm_up <= 600.0))
    usage = "--warm-up wants seconds in [0, 600]";
  if (usage) {
    g_printerr ("gst-colorize-film: %s\n%s", usage,
        g_option_context_get_help (ctx, TRUE, NULL));
    return 2;
  }
  g_option_context_free (ctx);
  f.warm_up = warm_up < 0.0 ? -1 : (gint64) (warm_up * GST_SECOND);
  const gchar *out = join ? argv[1] : argv[2];
  f.in = join ? NULL : argv[1]; /* --join reads chunks, not a film */

  GString *props = g_string_new (NULL);
  add_prop (props, "model-file", model);
  if (!smoothing)
    smoothing = g_strdup ("0.9");
  f.smoothing = g_ascii_strtod (smoothing, NULL);
  add_prop (props, "smoothing", smoothing);
  add_prop (props, "smoothing-motion", motion);
  add_prop (props, "scene-threshold", scene);
  add_prop (props, "temperature", temperature);
  add_prop (props, "saturation", saturation);
  add_prop (props, "net-size", net_size);
  add_prop (props, "n-threads", threads);
  add_prop (props, "backend", backend);
  add_prop (props, "precision", precision);
  f.colorize_props = g_string_free (props, FALSE);
  f.encoder = encoder ? encoder : g_strdup ("ffv1");
  f.chroma = chroma ? chroma : g_strdup ("Y444");

  for (int i = join ? 2 : 1; i < (join ? argc : 2); i++)
    if (!readable (argv[i]))
      return 1;
  /* beside OUT, so that the rename is atomic */
  f.partial = g_strdup_printf ("%s.partial-%d", out, (int) getpid ());
  /* a file size limit (ulimit -f) or a full disk is a write error to
   * report, not a signal that kills us before we can clean up */
  signal (SIGXFSZ, SIG_IGN);

  f.pipeline = gst_pipeline_new ("film");
  f.mux = gst_element_factory_make ("matroskamux", NULL);
  GstElement *sink = gst_element_factory_make ("filesink", NULL);
  GPtrArray *inputs = g_ptr_array_new_with_free_func (g_free);
  gboolean built = f.mux && sink;
  if (built) {
    g_object_set (sink, "location", f.partial, NULL);
    gst_bin_add_many (GST_BIN (f.pipeline), f.mux, sink, NULL);
    gst_element_link (f.mux, sink);
    built = join ? build_join (&f, argv + 2, (guint) argc - 2, inputs) :
        build_colour (&f, f.in);
  }
  if (!built) {
    g_printerr ("gst-colorize-film: GStreamer's base and good plugins are "
        "needed (filesrc, parsebin, matroskademux, matroskamux, concat, "
        "filesink)\n");
    return 1;
  }

  f.loop = g_main_loop_new (NULL, FALSE);
  GstBus *bus = gst_element_get_bus (f.pipeline);
  gst_bus_add_watch (bus, on_message, &f);
  g_unix_signal_add (SIGINT, on_interrupt, &f);
  g_unix_signal_add (SIGTERM, on_interrupt, &f);
  if (!f.quiet && !join)
    g_timeout_add (1000, report_progress, &f);
  f.started = g_get_monotonic_time ();
  if (gst_element_set_state (f.pipeline, GST_STATE_PLAYING) ==
      GST_STATE_CHANGE_FAILURE) {
    /* the error message on the bus says why */
    g_main_context_iteration (NULL, FALSE);
  }
  g_main_loop_run (f.loop);
  gst_element_set_state (f.pipeline, GST_STATE_NULL);

  const double elapsed = (g_get_monotonic_time () - f.started) / 1e6;
  if (f.exit_code == 0 && g_rename (f.partial, out) != 0) {
    g_printerr ("gst-colorize-film: cannot rename %s to %s: %s\n", f.partial,
        out, g_strerror (errno));
    f.exit_code = 1;
  }
  if (f.exit_code != 0)
    g_unlink (f.partial);
  else if (join && !f.quiet)
    g_printerr ("%d chunks joined in %.1f s -> %s\n", argc - 2, elapsed, out);
  else if (!f.quiet)
    g_printerr ("\r100.0 %%  %" G_GUINT64_FORMAT " frames coloured in %.1f s "
        "(%.1f frames/s) -> %s\n", f.frames, elapsed,
        elapsed > 0 ? f.frames / elapsed : 0.0, out);

  gst_object_unref (bus);
  gst_object_unref (f.pipeline);
  if (f.seek_pad)
    gst_object_unref (f.seek_pad);
  if (f.joined)
    g_ptr_array_unref (f.joined);
  g_ptr_array_unref (inputs);
  g_main_loop_unref (f.loop);
  g_free (f.partial);
  g_free (f.colorize_props);
  g_free (f.encoder);
  g_free (f.chroma);
  g_free (chunk);
  g_mutex_clear (&f.lock);
  g_mutex_clear (&f.join_lock);
  return f.exit_code;
}
