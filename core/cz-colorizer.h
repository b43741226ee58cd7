/* cz-colorizer: one video stream's colorization state.
 *
 * Per frame: the caller fills the full-resolution L* plane (h, w) returned by
 * cz_colorizer_luma(), then cz_colorizer_run() resizes it to the net size,
 * runs the network, turns the logits into a distribution over the 313 bins,
 * optionally mixes it with the previous frame's (temporal smoothing, reset at
 * scene cuts), decodes ab by the annealed mean and resizes ab to the output
 * grid (ch, cw) chosen in cz_colorizer_configure().
 *
 * Not thread-safe: one stream, one caller at a time. */
#ifndef CZ_COLORIZER_H
#define CZ_COLORIZER_H

#include "cz-model.h"

G_BEGIN_DECLS

typedef struct {
  float temperature;            /* annealed mean, > 0; 1 = plain mean */
  float saturation;             /* gain on the predicted ab, >= 0 */
  float smoothing;              /* alpha in [0, 1): weight of the past */
  float scene_threshold;        /* mean |dL*|/100 that resets smoothing; 0 = never */
  float motion;                 /* |dL*| of a pixel's 4x4 block, beyond 16x
                                 * the frame's mean, at which its smoothing
                                 * weight is halved; 0 = one weight for all */
} CzParams;

typedef struct CzColorizer CzColorizer;

#define CZ_COLORIZER_ERROR (cz_colorizer_error_quark ())
GQuark cz_colorizer_error_quark (void);

typedef enum {
  CZ_COLORIZER_ERROR_SIZE,      /* a frame or net size beyond the limits */
  CZ_COLORIZER_ERROR_NO_MEMORY, /* the buffers for a size could not be had */
  CZ_COLORIZER_ERROR_BACKEND    /* the backend asked for is not available */
} CzColorizerError;

/* Which code computes the network (cz-net.h, cz-dnnl.h).  Auto:
 * cz_backend_auto(). */
typedef enum {
  CZ_BACKEND_AUTO,
  CZ_BACKEND_OPENBLAS,
  CZ_BACKEND_ONEDNN
} CzBackend;

/* Auto: bf16 where the backend is oneDNN and the CPU computes bf16
 * natively (AVX512-BF16, AMX), else fp32. */
typedef enum {
  CZ_PRECISION_AUTO,
  CZ_PRECISION_FP32,
  CZ_PRECISION_BF16
} CzPrecision;

/* Whether this build has the backend. */
gboolean cz_backend_available (CzBackend backend);

/* What auto takes for this model at this precision: oneDNN where the build
 * has it, but OpenBLAS for a wide net (layers of 384 channels or more: ¾ of
 * the paper's widths and up) that oneDNN would compute in fp32, where the
 * OpenBLAS path's Winograd layers beat oneDNN's direct convolutions. */
CzBackend cz_backend_auto (const CzModel * model, CzPrecision precision);

/* Limits on what cz_colorizer_configure() accepts: the network's input
 * (4096 x 2048; the full-width net needs ~5 GB there) and the frame. */
#define CZ_MAX_NET_PIXELS (1 << 23)
#define CZ_MAX_FRAME_PIXELS (1 << 28)

/* Which thread count to run a frame with.  Output does not depend on it,
 * so it may change from frame to frame.  On an idle machine all `max`
 * threads are fastest; beside other busy processes OpenMP threads that wait
 * for a descheduled team-mate spin and the frame gets several times slower
 * than on one thread (measured: 640x480, 2 threads beside one busy process,
 * 86 ms a frame against 39 ms on one thread and 28 ms on two when idle).
 * So frames run on whichever of 1 and `max` threads has lately been faster;
 * every CZ_THREAD_PROBE-th frame tries the other. */
#define CZ_THREAD_PROBE 16

typedef struct {
  int max;                      /* the most threads allowed */
  int use_max;                  /* the current choice */
  unsigned frame;
  double est[2];                /* smoothed frame time, [0] 1 thread, [1] max */
  int seen[2];
} CzThreadChoice;

void cz_thread_choice_init (CzThreadChoice * c, int max);
/* The thread count for the next frame. */
int cz_thread_choice_next (const CzThreadChoice * c);
/* The frame just run on n_threads took `seconds`. */
void cz_thread_choice_done (CzThreadChoice * c, int n_threads,
    double seconds);

/* The colorizer borrows the model: it must outlive it. n_threads 0 = all
 * cores; the backend and precision automatic (oneDNN, falling back on
 * OpenBLAS).  Never NULL: its own small allocations abort on failure
 * (GLib's convention); the per-size buffers come from
 * cz_colorizer_configure(), which fails cleanly. */
CzColorizer *cz_colorizer_new (const CzModel * model, int n_threads);

/* Same, on a chosen backend and precision; NULL with
 * CZ_COLORIZER_ERROR_BACKEND when this build or CPU cannot have them. */
CzColorizer *cz_colorizer_new_full (const CzModel * model, int n_threads,
    CzBackend backend, CzPrecision precision, GError ** error);

/* Where the last cz_colorizer_run() spent its time, in seconds. */
typedef struct {
  double to_net;                /* L* resized to the net input */
  double net;                   /* the network */
  double decode;                /* softmax, smoothing, annealed mean */
  double to_output;             /* ab (and L*) resized to the output grid */
  int n_threads;                /* the run's thread count */
} CzTimings;

const CzTimings *cz_colorizer_timings (const CzColorizer * cz);

/* "openblas fp32", "onednn fp32" or "onednn bf16". */
const char *cz_colorizer_backend (const CzColorizer * cz);
void cz_colorizer_free (CzColorizer * cz);

/* Net input size for a frame: short side net_size, aspect kept, both sides
 * multiples of 8. */
void cz_colorizer_net_dims (int w, int h, int net_size, int *net_w,
    int *net_h);

/* Sizes every buffer for frames of w x h and output ab on a cw x ch grid;
 * net_size 0 = the model's own. Forgets the previous frame.  Fails with
 * CZ_COLORIZER_ERROR_SIZE beyond the limits above and
 * CZ_COLORIZER_ERROR_NO_MEMORY when the buffers cannot be allocated. */
gboolean cz_colorizer_configure (CzColorizer * cz, int w, int h, int cw,
    int ch, int net_size, GError ** error);

/* The (h, w) L* plane to fill before each run. */
float *cz_colorizer_luma (CzColorizer * cz);

/* Colours the frame in the luma plane. On return *L and *ab point to L*
 * (ch, cw) and ab (2, ch, cw) on the output grid, owned by cz. */
void cz_colorizer_run (CzColorizer * cz, const CzParams * params,
    const float **L, const float **ab);

/* The ab prediction at the net's output resolution (2, net_h/4, net_w/4) of
 * the last run, before resizing. */
const float *cz_colorizer_ab_small (const CzColorizer * cz, int *w, int *h);

/* Forget the previous frame (a seek, a flush, a discontinuity). */
void cz_colorizer_reset (CzColorizer * cz);

/* The thread count the next frame runs with (see CzThreadChoice); the
 * caller's own per-frame loops use it too. */
int cz_colorizer_n_threads (const CzColorizer * cz);

G_END_DECLS

#endif
