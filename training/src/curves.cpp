// curves.png drawn with PLplot (a library: no external process, no temporary files) through its
// Cairo PNG driver.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <plplot/plplot.h>

#include "vidcls/train/metrics.h"

namespace vidcls::train {

namespace {

constexpr const char *kDevice = "pngcairo";

// PLplot ends the process on a fatal error (an unknown device among them), so the driver is
// looked up first and its absence becomes an exception that names the package.
void require_png_driver() {
  std::vector<const char *> menu(128), names(128);  // plgDevs fills at most `count` entries
  const char **menu_p = menu.data(), **names_p = names.data();
  int count = static_cast<int>(names.size());
  plgDevs(&menu_p, &names_p, &count);
  bool found = false;
  for (int i = 0; i < count; ++i) found = found || std::strcmp(names_p[i], kDevice) == 0;
  if (!found) {
    throw std::runtime_error(
        "cannot draw curves.png: PLplot's Cairo driver (device pngcairo) is not installed; "
        "install the Debian package plplot-driver-cairo");
  }
}

// PLplot's colour map 0 entries used below.
enum Colour { kWhite = 0, kBlack = 1, kTrain = 2, kValidation = 3, kTest = 4, kGrid = 5, kLr = 6 };

void set_palette() {
  plscol0(kWhite, 255, 255, 255);
  plscol0(kBlack, 0, 0, 0);
  plscol0(kTrain, 31, 119, 180);      // blue
  plscol0(kValidation, 255, 127, 14);  // orange
  plscol0(kTest, 44, 160, 44);        // green
  plscol0(kGrid, 210, 210, 210);
  plscol0(kLr, 120, 120, 120);
}

struct Series {
  std::string name;
  std::vector<double> y;
  int colour, line_style, symbol;  // PLplot line style 1-8, plpoin symbol code
};

// Tick spacing of about `target` intervals over `range` from 1, 2, 5 x 10^k.
double nice_step(double range, int target) {
  const double raw = range / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * p >= raw) return m * p;
  }
  return 10 * p;
}

// One panel in the viewport (x0, x1, y0, y1) of the page: axes with ticks and values, a grid,
// the series as lines with markers, a legend (at PL_POSITION_TOP or _BOTTOM, on the right) when
// there is more than one series.
void draw_panel(double x0, double x1, double y0, double y1, const std::string &title,
                const std::string &y_label, const std::vector<double> &epochs,
                const std::vector<Series> &series, double y_min, double y_max,
                PLINT legend_position) {
  const double e0 = epochs.front(), e1 = epochs.back();
  const double pad = std::max(0.5, 0.03 * (e1 - e0));
  plvpor(x0, x1, y0, y1);
  plwind(e0 - pad, e1 + pad, y_min, y_max);
  const double x_step = std::max(1.0, nice_step(std::max(1.0, e1 - e0), 8));
  const double y_step = nice_step(y_max - y_min, 6);
  plcol0(kGrid);
  plwidth(0.5);
  plbox("g", x_step, 0, "g", y_step, 0);
  plcol0(kBlack);
  plwidth(1.0);
  plbox("bcnst", x_step, x_step >= 2 ? 2 : 0, "bcnstv", y_step, 0);
  pllab("epoch", y_label.c_str(), title.c_str());
  for (const auto &s : series) {
    plcol0(s.colour);
    pllsty(s.line_style);
    plwidth(2.0);
    if (s.y.size() > 1) plline(static_cast<PLINT>(s.y.size()), epochs.data(), s.y.data());
    plssym(0, 0.6);
    plpoin(static_cast<PLINT>(s.y.size()), epochs.data(), s.y.data(), s.symbol);
  }
  pllsty(1);
  plwidth(1.0);
  if (series.size() < 2) return;
  const auto n = static_cast<PLINT>(series.size());
  std::vector<PLINT> opts(n, PL_LEGEND_LINE), colours, styles;
  std::vector<PLFLT> widths(n, 2.0);
  std::vector<const char *> texts;
  for (const auto &s : series) {
    colours.push_back(s.colour);
    styles.push_back(s.line_style);
    texts.push_back(s.name.c_str());
  }
  PLFLT width = 0, height = 0;
  pllegend(&width, &height, PL_LEGEND_BACKGROUND | PL_LEGEND_BOUNDING_BOX,
           legend_position | PL_POSITION_RIGHT | PL_POSITION_INSIDE, 0.02, 0.03, 0.07, kWhite,
           kBlack, 1, 0, 0, n, opts.data(), 0.8, 0.8, 1.6, 0.0, colours.data(), texts.data(),
           nullptr, nullptr, nullptr, nullptr, colours.data(), styles.data(), widths.data(),
           nullptr, nullptr, nullptr, nullptr);
}

double max_of(const std::vector<Series> &series) {
  double hi = 0;
  for (const auto &s : series)
    for (double v : s.y)
      if (std::isfinite(v)) hi = std::max(hi, v);
  return hi > 0 ? hi : 1;
}

}  // namespace

void write_curves_png(const std::string &path, const std::vector<CurvePoint> &points) {
  if (points.empty()) throw std::invalid_argument("curves: no epochs to draw");
  static std::mutex mutex;  // PLplot keeps its streams in global state
  std::lock_guard<std::mutex> lock(mutex);
  require_png_driver();

  std::vector<double> epochs;
  Series train_loss{"train", {}, kTrain, 1, 17}, val_loss{"validation", {}, kValidation, 2, 16},
      test_loss{"test", {}, kTest, 3, 6};
  Series train_acc = train_loss, val_acc = val_loss, test_acc = test_loss,
         lr{"learning rate", {}, kLr, 1, 17};
  bool have_val = false, have_test = false;
  for (const auto &p : points) {
    epochs.push_back(p.epoch);
    train_loss.y.push_back(p.train_loss);
    val_loss.y.push_back(p.val_loss);
    test_loss.y.push_back(p.test_loss);
    train_acc.y.push_back(100 * p.train_acc);
    val_acc.y.push_back(100 * p.val_top1);
    test_acc.y.push_back(100 * p.test_top1);
    lr.y.push_back(p.lr);
    have_val = have_val || p.val_loss > 0;  // an evaluated side never has a loss of exactly 0
    have_test = have_test || p.test_loss > 0;
  }
  std::vector<Series> loss{train_loss}, acc{train_acc};
  if (have_val) loss.push_back(val_loss), acc.push_back(val_acc);
  if (have_test) loss.push_back(test_loss), acc.push_back(test_acc);
  acc.front().name = "train (augmented clips)";

  // PLplot ends the process when it cannot open its output, so that is tried here first; the
  // picture goes to a temporary name and is renamed, so a reader never sees half a file.
  const std::string tmp = path + ".tmp";
  if (std::FILE *f = std::fopen(tmp.c_str(), "wb")) {
    std::fclose(f);
  } else {
    throw std::runtime_error("cannot write " + tmp);
  }
  PLINT previous = 0, stream = 0;
  plgstrm(&previous);
  plmkstrm(&stream);
  plsdev(kDevice);
  plsfnam(tmp.c_str());
  plspage(0, 0, kCurvesWidth, kCurvesHeight, 0, 0);
  set_palette();
  plinit();
  pladv(0);
  plschr(0, 0.9);
  draw_panel(0.05, 0.32, 0.17, 0.86, "loss (cross-entropy)", "loss", epochs, loss, 0,
             1.05 * max_of(loss), PL_POSITION_TOP);
  draw_panel(0.39, 0.66, 0.17, 0.86, "top-1 accuracy", "top-1 (%)", epochs, acc, 0, 100,
             PL_POSITION_BOTTOM);
  draw_panel(0.74, 0.98, 0.17, 0.86, "learning rate", "learning rate", epochs, {lr}, 0,
             1.1 * max_of({lr}), PL_POSITION_TOP);
  plend1();
  plsstrm(previous);
  std::error_code ec;
  if (std::filesystem::file_size(tmp, ec) == 0 || ec) {
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("PLplot wrote nothing to " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace vidcls::train
