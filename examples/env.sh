# Sourced by the example scripts: find the colorize element.
# Installed (meson install): nothing to do.  Built but not installed: use the
# build tree and the model in the source tree, as `meson devenv` would.
_top="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_build="${COLORIZE_BUILD:-$_top/build}"
if [ -f "$_build/gst/libgstcolorize.so" ]; then
  export GST_PLUGIN_PATH="$_build/gst${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
  export GST_COLORIZE_MODEL="${GST_COLORIZE_MODEL:-$_top/models/default.safetensors}"
fi
if ! gst-inspect-1.0 colorize >/dev/null 2>&1; then
  echo "colorize element not found: build it first (meson setup build && ninja -C build)" >&2
  exit 1
fi
