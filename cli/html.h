// Text for the HTML and SVG documents the CLI writes (trends, A/B report):
// any string, escaped so that every catalog and every log renders a valid
// document.
#pragma once

#include <string>

namespace vitrine::cli {

// Escapes &, <, >, " and ' and replaces what XML 1.0 does not allow
// (control characters but tab, U+FFFE, U+FFFF).
std::string HtmlEscape(const std::string& s);

// printf-style formatting of one number ("%.2f").
std::string FormatNumber(double x, const char* fmt = "%.2f");

}  // namespace vitrine::cli
