// Which vidcls plugins a tool loads, without GST_PLUGIN_PATH set by hand: a tool run from the
// build tree takes the build tree's plugins (as GStreamer's own uninstalled environment does),
// an installed tool the plugins installed with it, wherever the install was moved to.
#pragma once

#include <string>

namespace vidcls {
namespace tools {

struct PluginPath {
  std::string dir;    // the folder added to GST_PLUGIN_PATH; empty when none was found
  std::string where;  // "build tree" or "installed"
};

// Adds this tool's plugin folder to GST_PLUGIN_PATH; call before gst_init. The build tree's
// folder goes first, so it wins over an installed vidcls; an installed tool's goes last, after
// the user's own folders. Reads /proc/self/exe to know where the tool runs from.
PluginPath use_own_plugins();

}  // namespace tools
}  // namespace vidcls
