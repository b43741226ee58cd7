#!/usr/bin/python3
"""gst-colorize-film on a made-up 2-minute film with a sound track and
subtitles: the video coloured into FFV1, the sound and the subtitles
bit-identical packet for packet, every frame kept with its timestamp,
progress on stderr; chapters kept, by a single run and by chunks joined; and
the failures an archivist meets -- unreadable input, missing model, full disk
-- end with a non-zero exit and no file under OUT's name."""
import glob
import os
import resource
import subprocess
import sys
import tempfile
import unittest

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("COLORIZE_BUILD", os.path.join(ROOT, "build"))
FILM = os.path.join(BUILD, "tools", "gst-colorize-film")
SECONDS, FPS = 120, 10

SRT = """1
00:00:01,000 --> 00:00:04,000
Ladies and gentlemen, the moving picture.

2
00:00:30,500 --> 00:00:33,000
In colour, for the first time.

3
00:01:50,000 --> 00:01:55,000
The end.
"""


def env():
    return dict(os.environ, GST_PLUGIN_PATH=os.path.join(BUILD, "gst"),
                GST_COLORIZE_MODEL=os.environ.get(
                    "GST_COLORIZE_MODEL", os.path.join(ROOT, "models", "default.safetensors")))


def streams(path, names=("video_0", "audio_0", "subtitle_0")):
    """{pad name: (caps name, [(pts, bytes), ...])} of a Matroska file's
    streams as the demuxer gives them (encoded packets)."""
    desc = f'filesrc location="{path}" ! matroskademux name=d ' + " ".join(
        f"d.{n} ! queue max-size-buffers=0 max-size-bytes=0 max-size-time=0 ! "
        f"appsink name={n} sync=false" for n in names)
    pipe = Gst.parse_launch(desc)
    pipe.set_state(Gst.State.PLAYING)
    out = {}
    for n in names:
        sink, packets, caps = pipe.get_by_name(n), [], None
        while True:
            sample = sink.emit("pull-sample")
            if sample is None:
                break
            caps = caps or sample.get_caps().get_structure(0).get_name()
            buf = sample.get_buffer()
            ok, info = buf.map(Gst.MapFlags.READ)
            packets.append((buf.pts, bytes(info.data)))
            buf.unmap(info)
        out[n] = (caps, packets)
    pipe.set_state(Gst.State.NULL)
    return out


def mean_chroma(path, frames=20):
    """Mean max(R,G,B) - min(R,G,B) of the first frames of a file's video."""
    pipe = Gst.parse_launch(f'filesrc location="{path}" ! decodebin ! videoconvert ! '
                            f'video/x-raw,format=RGB ! appsink name=s sync=false')
    sink = pipe.get_by_name("s")
    pipe.set_state(Gst.State.PLAYING)
    total, n = 0.0, 0
    for _ in range(frames):
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        px = memoryview(info.data)
        s = 0
        for i in range(0, len(px) - 2, 3 * 7):      # every 7th pixel
            s += max(px[i], px[i + 1], px[i + 2]) - min(px[i], px[i + 1], px[i + 2])
        total += s / (len(px) / 21)
        n += 1
        buf.unmap(info)
    pipe.set_state(Gst.State.NULL)
    return total / max(n, 1)


class Film(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        Gst.init(None)
        cls.tmp = tempfile.TemporaryDirectory()
        d = cls.tmp.name
        srt = os.path.join(d, "subs.srt")
        with open(srt, "w") as f:
            f.write(SRT)
        cls.film = os.path.join(d, "film.mkv")
        desc = (f"matroskamux name=mux ! filesink location={cls.film} "
                f"videotestsrc pattern=smpte num-buffers={SECONDS * FPS} ! "
                f"video/x-raw,format=GRAY8,width=160,height=120,framerate={FPS}/1,"
                f"pixel-aspect-ratio=16/15 ! videoconvert ! video/x-raw,format=I420 ! "
                f"vp8enc deadline=1 ! mux. "
                f"audiotestsrc num-buffers={SECONDS * 50} samplesperbuffer=960 ! "
                f"audio/x-raw,rate=48000,channels=2 ! opusenc ! mux. "
                f"filesrc location={srt} ! subparse ! mux.")
        subprocess.run(["gst-launch-1.0", "-q"] + desc.split(), check=True, capture_output=True)
        cls.out = os.path.join(d, "film-colour.mkv")
        cls.run_ = subprocess.run([FILM, cls.film, cls.out, "--threads", "2"],
                                  capture_output=True, text=True, env=env())

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_colours_the_film(self):
        self.assertEqual(self.run_.returncode, 0, self.run_.stderr)
        self.assertTrue(os.path.exists(self.out))
        self.assertEqual(glob.glob(self.out + ".partial*"), [])
        src, out = streams(self.film), streams(self.out)
        # every frame, with its timestamp; lossless FFV1; coloured
        self.assertEqual(out["video_0"][0], "video/x-ffv")
        self.assertEqual([p for p, _ in out["video_0"][1]], [p for p, _ in src["video_0"][1]])
        self.assertEqual(len(out["video_0"][1]), SECONDS * FPS)
        self.assertGreater(mean_chroma(self.out), 4.0)
        self.assertLess(mean_chroma(self.film), 2.0)

    def test_sound_and_subtitles_bit_identical(self):
        src, out = streams(self.film), streams(self.out)
        for name in ("audio_0", "subtitle_0"):
            self.assertEqual(out[name][0], src[name][0])
            self.assertGreater(len(src[name][1]), 2)
            self.assertEqual(out[name][1], src[name][1], name)

    def test_size_and_aspect_kept(self):
        def caps(path):
            pipe = Gst.parse_launch(f'filesrc location="{path}" ! decodebin ! fakesink name=s')
            pipe.set_state(Gst.State.PAUSED)
            pipe.get_state(Gst.CLOCK_TIME_NONE)
            c = pipe.get_by_name("s").get_static_pad("sink").get_current_caps().get_structure(0)
            pipe.set_state(Gst.State.NULL)
            return (c.get_value("width"), c.get_value("height"), c.get_fraction("framerate")[1:],
                    c.get_fraction("pixel-aspect-ratio")[1:])
        self.assertEqual(caps(self.out), caps(self.film))

    def test_progress_on_stderr(self):
        err = self.run_.stderr
        self.assertIn("%", err)
        self.assertIn("frames/s", err)
        self.assertIn("ETA", err)
        self.assertIn(f"{SECONDS * FPS} frames coloured", err)

    def test_chunks_through_gnu_parallel_match_a_single_run(self):
        """Three chunks coloured by GNU parallel and joined: every frame with
        its timestamp, colour identical to the single run (the default
        warm-up, the frames that smoothing 0.9 needs, settles it to the last
        bit; 3 s, 30 frames here, did not), audio and subtitles identical."""
        self.assertEqual(self.run_.returncode, 0, self.run_.stderr)
        joined = os.path.join(self.tmp.name, "film-chunks.mkv")
        r = subprocess.run(["bash", os.path.join(ROOT, "examples", "film-parallel.sh"),
                            self.film, joined, "3", "--threads", "1"],
                           capture_output=True, text=True, env=dict(env(), FILM=FILM))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(glob.glob(joined + ".part*"), [])
        single, chunked = streams(self.out), streams(joined)
        self.assertEqual(chunked["video_0"][0], "video/x-ffv")
        self.assertEqual(len(chunked["video_0"][1]), SECONDS * FPS)
        self.assertEqual([p for p, _ in chunked["video_0"][1]], [p for p, _ in single["video_0"][1]])
        same = [a == b for a, b in zip(chunked["video_0"][1], single["video_0"][1])]
        self.assertTrue(all(same), f"frames differing: {[i for i, s in enumerate(same) if not s]}")
        self.assertEqual(chunked["subtitle_0"], single["subtitle_0"])
        # audio: every packet, except that matroskademux (1.22) stops a seek
        # at the film's stated duration, which the last Opus packet's
        # Matroska time (its pts + the codec delay) reaches
        audio, ref = chunked["audio_0"][1], single["audio_0"][1]
        self.assertEqual(audio, ref[:len(audio)])
        last_frame_end = single["video_0"][1][-1][0] + 10 ** 9 // FPS
        self.assertLessEqual(len(ref) - len(audio), 1)
        for pts, _ in ref[len(audio):]:
            self.assertGreater(pts + 6_500_000, last_frame_end - 1)

    def test_chunk_and_join_errors(self):
        for bad in ("0/3", "4/3", "x", "1/0"):
            r = subprocess.run([FILM, "--chunk", bad, self.film, "x.mkv"], capture_output=True,
                               text=True, env=env())
            self.assertEqual(r.returncode, 2, bad)
            self.assertIn("--chunk wants K/N", r.stderr)
        # a chunk of another film (no subtitles) cannot be joined
        other = os.path.join(self.tmp.name, "other.mkv")
        subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=10", "!",
                        "video/x-raw,width=160,height=120", "!", "avenc_ffv1", "!",
                        "matroskamux", "!", "filesink", f"location={other}"], check=True)
        err = self.failing(["--join", self.out, other], join=True)
        self.assertIn("has no stream", err)

    def failing(self, args, limit_bytes=None, join=False):
        out = os.path.join(self.tmp.name, "failed.mkv")

        def limit():
            if limit_bytes:
                resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
        argv = [FILM, args[0], out] + args[1:] if join else [FILM] + args + [out]
        r = subprocess.run(argv, capture_output=True, text=True, env=env(), preexec_fn=limit)
        self.assertNotEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(out))
        self.assertEqual(glob.glob(out + ".partial*"), [])
        return r.stderr

    def test_unreadable_input(self):
        err = self.failing([os.path.join(self.tmp.name, "no-such-film.mkv")])
        self.assertIn("no such file", err)
        not_video = os.path.join(self.tmp.name, "notes.txt")
        with open(not_video, "w") as f:
            f.write("not a film\n" * 100)
        self.failing([not_video])

    def test_missing_model(self):
        err = self.failing([self.film, "--model", "/nonexistent/model.safetensors"])
        self.assertIn("/nonexistent/model.safetensors", err)

    def test_full_disk(self):
        # a file size limit: writes fail as they would on a full disk
        err = self.failing([self.film], limit_bytes=200_000)
        self.assertIn("filesink", err)


def chapters(path):
    """[(start, stop, title), ...] of a file's chapters, as GStreamer reads
    its table of contents."""
    gi.require_version("GstPbutils", "1.0")
    from gi.repository import GstPbutils
    info = GstPbutils.Discoverer.new(10 * Gst.SECOND).discover_uri(Gst.filename_to_uri(path))
    out = []

    def walk(entry):
        if entry.get_entry_type() == Gst.TocEntryType.CHAPTER:
            tags = entry.get_tags()
            out.append((*entry.get_start_stop_times()[1:],
                        tags.get_string("title")[1] if tags else None))
        for sub in entry.get_sub_entries():
            walk(sub)
    for entry in (info.get_toc().get_entries() if info.get_toc() else []):
        walk(entry)
    return out


class Chapters(unittest.TestCase):
    """A film's chapters (Matroska, written by mkvmerge) come through the
    film command, and through --chunk and --join, with their times and
    titles."""

    def test_chapters_kept(self):
        Gst.init(None)
        with tempfile.TemporaryDirectory() as d:
            plain, film = os.path.join(d, "plain.mkv"), os.path.join(d, "film.mkv")
            subprocess.run(["gst-launch-1.0", "-q", "videotestsrc", "num-buffers=100", "!",
                            "video/x-raw,format=GRAY8,width=160,height=120,framerate=25/1", "!",
                            "avenc_ffv1", "!", "matroskamux", "!", "filesink", f"location={plain}"],
                           check=True, capture_output=True)
            with open(os.path.join(d, "ch.txt"), "w") as f:
                f.write("CHAPTER01=00:00:00.000\nCHAPTER01NAME=Opening\n"
                        "CHAPTER02=00:00:02.000\nCHAPTER02NAME=Second reel\n")
            subprocess.run(["mkvmerge", "-q", "-o", film, "--chapters", os.path.join(d, "ch.txt"), plain],
                           check=True, capture_output=True)
            want = [(0, 2 * Gst.SECOND, "Opening"), (2 * Gst.SECOND, 4 * Gst.SECOND, "Second reel")]
            self.assertEqual(chapters(film), want)
            out = os.path.join(d, "out.mkv")
            r = subprocess.run([FILM, "--quiet", film, out], capture_output=True, text=True, env=env())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(chapters(out), want)
            parts = [os.path.join(d, f"part{k}.mkv") for k in (1, 2, 3)]
            for k, part in enumerate(parts, 1):
                r = subprocess.run([FILM, "--quiet", "--chunk", f"{k}/3", film, part],
                                   capture_output=True, text=True, env=env())
                self.assertEqual(r.returncode, 0, r.stderr)
            joined = os.path.join(d, "joined.mkv")
            r = subprocess.run([FILM, "--join", joined] + parts, capture_output=True, text=True, env=env())
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(chapters(joined), want)


if __name__ == "__main__":
    unittest.main(verbosity=2)
