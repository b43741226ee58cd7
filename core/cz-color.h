/* cz-color: CIELAB (D65, sRGB primaries) and the frame readers/writers.
 *
 * L* is in [0, 100], a* and b* in about [-110, 110]. 8-bit gray and luma
 * codes are read as sRGB-encoded gray levels (R = G = B = code), which is
 * exact for the grayscale frames this element colours. */
#ifndef CZ_COLOR_H
#define CZ_COLOR_H

#include <glib.h>
#include <stdint.h>

#include "cz-topology.h"

G_BEGIN_DECLS

/* The 313 ab bin centres, in the released model's channel order. */
extern const float cz_bins[CZ_N_BINS][2];

/* sRGB in [0, 1] <-> Lab; lab_to_srgb clips to the sRGB gamut. */
void cz_srgb_to_lab (const float rgb[3], float lab[3]);
void cz_lab_to_srgb (const float lab[3], float rgb[3]);

/* L* of each 8-bit code; limited: codes are 16..235 video range. */
void cz_luma_table (float table[256], gboolean limited);

/* Where the R, G, B (and alpha, or -1) bytes sit in a packed pixel. */
typedef struct {
  int r, g, b, a;
  int bpp;
} CzRgbLayout;

/* Y'CbCr coefficients and range of a YUV frame. */
typedef struct {
  double kr, kb;
  gboolean limited;
} CzYuvMatrix;

/* Full-resolution L* plane L (h, w) from the frame's luma. */
void cz_read_luma8 (const uint8_t * src, int stride, int pixel_stride,
    int w, int h, const float table[256], float *L, int n_threads);
void cz_read_rgb8 (const uint8_t * src, int stride, const CzRgbLayout * lay,
    int w, int h, const float table[256], float *L, int n_threads);
void cz_read_gray16le (const uint8_t * src, int stride, int w, int h,
    float *L, int n_threads);

/* Writes Lab(L, ab) as 8-bit sRGB; ab is (2, h, w). Alpha, if the layout
 * has it, is set to 255 when set_alpha, else left as it is. */
void cz_write_rgb8 (const float *L, const float *ab, int w, int h,
    uint8_t * dst, int stride, const CzRgbLayout * lay, gboolean set_alpha,
    int n_threads);

/* Writes the 8-bit luma of gray L* (the inverse of cz_luma_table). */
void cz_write_luma8 (const float *L, int w, int h, uint8_t * dst, int stride,
    gboolean limited, int n_threads);

/* Writes the chroma of Lab(L, ab) into U and V planes of cw x ch samples
 * (pixel_stride 2 for interleaved NV12, with v = u + 1); L and ab are at the
 * chroma resolution. Luma is not touched. */
void cz_write_chroma8 (const float *L, const float *ab, int cw, int ch,
    uint8_t * u, int ustride, uint8_t * v, int vstride, int pixel_stride,
    const CzYuvMatrix * m, int n_threads);

G_END_DECLS

#endif
