// Kinetics-400's class names, which every published Kinetics-400 classifier that vidcls imports
// shares (docs/kinetics.md).
#pragma once

#include <string>
#include <vector>

namespace vidcls {

// The 400 names in the order of the classifiers' outputs.
const std::vector<std::string> &kinetics400_labels();

}  // namespace vidcls
