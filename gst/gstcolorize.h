/* GStreamer colorize element: colours grayscale video with the ECCV16
 * network of Zhang, Isola & Efros, "Colorful Image Colorization" (2016). */
#ifndef __GST_COLORIZE_H__
#define __GST_COLORIZE_H__

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>

G_BEGIN_DECLS

#define GST_TYPE_COLORIZE (gst_colorize_get_type ())
G_DECLARE_FINAL_TYPE (GstColorize, gst_colorize, GST, COLORIZE, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE (colorize);

G_END_DECLS

#endif /* __GST_COLORIZE_H__ */
