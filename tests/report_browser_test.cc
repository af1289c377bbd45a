// The `vitrine report` page in a real browser: headless Chromium (Debian
// `chromium`, installed by scripts/install-deps.sh) loads the page the CLI
// wrote from simulated logs, and its DOM holds the tables and plots while
// its console stays empty. A page with a script error is loaded first, to
// show that the console check sees errors.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "tests/scratch_dir.h"

namespace vitrine {
namespace {

namespace fs = std::filesystem;
constexpr const char* kChromium = "/usr/bin/chromium";

struct Page {
  int rc = -1;
  std::string dom;
  std::string console;  // the browser log's CONSOLE lines
};

// Loads `page` in headless Chromium: its DOM after scripts ran, and what
// its console printed. With `screenshot`, also a PNG of the page.
Page Load(const fs::path& page, const fs::path& work, const std::string& screenshot = "") {
  const fs::path out = work / "dom.html", err = work / "browser.log";
  const std::string common = std::string(kChromium) +
                             " --headless --no-sandbox --disable-gpu --no-first-run "
                             "--user-data-dir='" +
                             (work / "profile").string() + "' ";
  const std::string cmd = common + "--enable-logging=stderr --v=0 --dump-dom 'file://" +
                          page.string() + "' >'" + out.string() + "' 2>'" + err.string() + "'";
  Page p;
  p.rc = std::system(cmd.c_str());
  p.dom = Slurp(out);
  std::ifstream log(err);
  for (std::string line; std::getline(log, line);) {
    if (line.find(":CONSOLE") != std::string::npos) p.console += line + "\n";
  }
  if (!screenshot.empty()) {
    const std::string shot = common + "--hide-scrollbars --window-size=1100,1900 --screenshot='" +
                             screenshot + "' 'file://" + page.string() + "' >/dev/null 2>&1";
    EXPECT_EQ(std::system(shot.c_str()), 0) << shot;
  }
  return p;
}

TEST(ReportBrowser, TheReportPageRendersInChromiumWithoutConsoleErrors) {
  ASSERT_TRUE(fs::exists(kChromium))
      << kChromium << " is not installed: scripts/install-deps.sh installs Debian's chromium";
  const fs::path dir = ScratchDir() / "report_browser";
  fs::create_directories(dir);

  // The check sees a script error.
  WriteText(dir / "broken.html",
            "<!DOCTYPE html><html><body><script>missingFunction();</script></body></html>\n");
  const Page broken = Load(dir / "broken.html", dir);
  ASSERT_EQ(broken.rc, 0);
  EXPECT_NE(broken.console.find("missingFunction is not defined"), std::string::npos)
      << broken.console;

  // Simulated logs: two variants, "better" with twice the click rate.
  std::mt19937 rng(9);
  std::uniform_real_distribution<double> u(0, 1);
  std::string impressions = "request_id,user_id,item_id,position,variant,endpoint,timestamp\n";
  std::string events = "user_id,item_id,event,timestamp,channel,request_id,position\n";
  for (int user = 0; user < 400; ++user) {
    const std::string variant = user % 2 ? "better" : "control";
    const double p = user % 2 ? 0.1 : 0.05;
    for (int r = 0; r < 3; ++r) {
      const std::string request = "r" + std::to_string(user) + "-" + std::to_string(r);
      const int64_t t = 1'700'000'000 + static_cast<int64_t>(u(rng) * 5 * 86400);
      for (int pos = 1; pos <= 6; ++pos) {
        const std::string item = "I" + std::to_string(static_cast<int>(u(rng) * 300));
        const std::string user_id = "<U" + std::to_string(user) + ">";  // escaped in the page
        impressions += request + "," + user_id + "," + item + "," + std::to_string(pos) + "," +
                       variant + ",recommend," + std::to_string(t) + "\n";
        if (u(rng) < p) {
          events += user_id + "," + item + ",view," + std::to_string(t + 9) + ",," + request + "," +
                    std::to_string(pos) + "\n";
        }
      }
    }
  }
  WriteText(dir / "impressions.csv", impressions);
  WriteText(dir / "events.csv", events);
  const std::string cmd = std::string("'") + VITRINE_BINARY + "' report --impressions '" +
                          (dir / "impressions.csv").string() + "' --events '" +
                          (dir / "events.csv").string() + "' --bootstrap 200 -q --out '" +
                          (dir / "report.html").string() + "' >'" + (dir / "report.out").string() +
                          "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << Slurp(dir / "report.out");

  const Page report = Load(dir / "report.html", dir, (dir / "report.png").string());
  ASSERT_EQ(report.rc, 0);
  EXPECT_EQ(report.console, "") << "the report page logged to the console";
  EXPECT_NE(report.dom.find("<h1>vitrine A/B report</h1>"), std::string::npos) << report.dom;
  EXPECT_NE(report.dom.find("<td>better</td>"), std::string::npos);
  EXPECT_NE(report.dom.find("<h2>ctr</h2>"), std::string::npos);
  EXPECT_NE(report.dom.find("class=\"diff\""), std::string::npos);
  EXPECT_NE(report.dom.find("class=\"series\""), std::string::npos);
  EXPECT_EQ(report.dom.find("<U1>"), std::string::npos);
  // The doubled click rate is called up.
  EXPECT_NE(report.dom.find("<td class=\"up\">"), std::string::npos);
  // The screenshot is a PNG of a rendered page, not an empty one.
  const std::string png = Slurp(dir / "report.png");
  ASSERT_GT(png.size(), 20000u);
  EXPECT_EQ(png.substr(1, 3), "PNG");
}

}  // namespace
}  // namespace vitrine
