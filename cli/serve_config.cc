// serve --config / --print-config: TOML <-> serve flags.
#include "cli/serve_config.h"

#include <cmath>
#include <sstream>
#include <toml++/toml.h>

#include "engine/config_file.h"

namespace vitrine::cli {
namespace {

std::string Where(const std::filesystem::path& file, const toml::source_region& at) {
  return ConfigWhere(file.string(), at);
}

const char* KindName(ServeKey::Kind k) {
  switch (k) {
    case ServeKey::Kind::kString: return "a string";
    case ServeKey::Kind::kInt:
    case ServeKey::Kind::kInt64: return "an integer";
    case ServeKey::Kind::kReal: return "a number";
    case ServeKey::Kind::kFlag: return "true or false";
  }
  return "";
}

bool OnCommandLine(const std::vector<std::string>& args, const std::string& name) {
  const std::string flag = "--" + name;
  for (const std::string& a : args) {
    if (a == flag || a.rfind(flag + "=", 0) == 0) return true;
  }
  return false;
}

// A TOML string as TOML (quotes and escapes).
std::string Quoted(const std::string& s) {
  std::ostringstream out;
  out << toml::value<std::string>(s);
  return out.str();
}

}  // namespace

Result<std::vector<std::string>> ServeConfigArgs(const std::filesystem::path& file,
                                                 const std::vector<ServeKey>& keys,
                                                 const std::vector<std::string>& command_line) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadConfigFile(file.string(), "serve config"));
  VITRINE_ASSIGN_OR_RETURN(toml::table table, ParseConfigToml(text, file.string()));
  std::vector<std::string> args;
  for (const auto& [k, node] : table) {
    const std::string name(k.str());
    const ServeKey* key = nullptr;
    for (const ServeKey& c : keys) {
      if (name == c.name) key = &c;
    }
    if (key == nullptr || name == "config") {
      std::string known;
      for (const ServeKey& c : keys) known += (known.empty() ? "" : ", ") + std::string(c.name);
      return Status::InvalidArgument(Where(file, node.source()) + ": unknown key '" + name +
                                     "' (serve flags without the dashes: " + known + ")");
    }
    std::string value;
    bool ok = true;
    switch (key->kind) {
      case ServeKey::Kind::kString:
        if (auto v = node.value_exact<std::string>()) value = *v; else ok = false;
        break;
      case ServeKey::Kind::kInt:
      case ServeKey::Kind::kInt64:
        if (auto v = node.value_exact<int64_t>()) value = std::to_string(*v); else ok = false;
        break;
      case ServeKey::Kind::kReal:
        if (auto i = node.value_exact<int64_t>()) {
          value = std::to_string(*i);
        } else if (auto d = node.value_exact<double>(); d && std::isfinite(*d)) {
          std::ostringstream s;
          s.precision(17);
          s << *d;
          value = s.str();
        } else {
          ok = false;
        }
        break;
      case ServeKey::Kind::kFlag:
        if (auto v = node.value_exact<bool>()) value = *v ? "1" : ""; else ok = false;
        break;
    }
    if (!ok) {
      return Status::InvalidArgument(Where(file, node.source()) + ": '" + name + "' must be " +
                                     KindName(key->kind));
    }
    // cxxopts matches "--name=value" with std::regex, which recurses per
    // character: a 100 kB value overflowed the stack. Paths and lists of
    // events are far shorter.
    if (value.size() > kMaxServeConfigValueBytes) {
      return Status::InvalidArgument(Where(file, node.source()) + ": '" + name + "' is " +
                                     std::to_string(value.size()) + " bytes long, at most " +
                                     std::to_string(kMaxServeConfigValueBytes));
    }
    if (OnCommandLine(command_line, name)) continue;  // the command line wins
    if (key->kind == ServeKey::Kind::kFlag) {
      if (!value.empty()) args.push_back("--" + name);
    } else {
      args.push_back("--" + name + "=" + value);
    }
  }
  return args;
}

std::string PrintServeConfig(const cxxopts::ParseResult& r, const std::vector<ServeKey>& keys) {
  std::string out = "# vitrine serve settings (vitrine serve --config FILE)\n";
  for (const ServeKey& k : keys) {
    const std::string name = k.name;
    if (name == "config") continue;
    if (k.kind == ServeKey::Kind::kFlag) {
      out += name + " = " + (r.count(name) ? "true" : "false") + "\n";
      continue;
    }
    try {
      switch (k.kind) {
        case ServeKey::Kind::kString:
          out += name + " = " + Quoted(r[name].as<std::string>()) + "\n";
          break;
        case ServeKey::Kind::kInt:
          out += name + " = " + std::to_string(r[name].as<int>()) + "\n";
          break;
        case ServeKey::Kind::kInt64:
          out += name + " = " + std::to_string(r[name].as<int64_t>()) + "\n";
          break;
        case ServeKey::Kind::kReal: {
          std::ostringstream s;
          s.precision(17);
          s << r[name].as<double>();
          out += name + " = " + s.str() + "\n";
          break;
        }
        case ServeKey::Kind::kFlag: break;
      }
    } catch (const cxxopts::exceptions::exception&) {
      // Neither given nor defaulted: nothing to print.
    }
  }
  return out;
}

}  // namespace vitrine::cli
