#include "rank/rules.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <charconv>
#include <cmath>
#include <functional>
#include <limits>
#include <unordered_map>

#include "core/file_util.h"

namespace vitrine {
namespace {

// ---------------------------------------------------------------- syntax tree

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe, kIn, kNotIn, kBetween, kNotBetween };

struct Value {
  enum class Kind { kString, kNumber, kBool, kParam, kCurrentItem, kContext };
  Kind kind = Kind::kString;
  std::string text;  // string contents, number as written, param/column/key name
  double number = 0;
  bool boolean = false;
  int col = 0;
  int column = -1;  // kCurrentItem: index into Impl::columns after Bind
};

struct Node {
  enum class Kind { kAnd, kOr, kNot, kCompare };
  Kind kind = Kind::kCompare;
  int a = -1, b = -1;  // children (kNot: a only)
  // kCompare:
  bool on_context = false;  // attr is a context key (WHEN conditions)
  std::string attr;
  int attr_col = 0;
  Op op = Op::kEq;
  std::string op_text;
  int op_col = 0;
  std::vector<Value> values;
  int column = -1;  // index into Impl::columns after Bind
  int line = 0;
};

struct Rule {
  enum class Kind { kInclude, kExclude, kBoost, kBury, kPin, kCap };
  Kind kind = Kind::kInclude;
  int line = 0;
  int when = -1;   // node id of the context condition, or -1
  int where = -1;  // node id of the item predicate, or -1
  double factor = 1;
  std::string pin_id;
  int pin_id_col = 0;
  int32_t pin_item = -1;
  int32_t pin_position = 0;  // 0-based
  int32_t cap_limit = 0;
  std::string cap_column_name;
  int cap_col = 0;
  int cap_groups = -1;  // index into Impl::cap_groups after Bind
  bool uses_current_item = false;
  bool dynamic = false;        // result depends on the request
  bool where_dynamic = false;  // the WHERE predicate uses $param, context or CurrentItem
  bool IsFilter() const { return kind == Kind::kInclude || kind == Kind::kExclude; }
};

// A catalog column the rules use, copied so the Catalog may go away.
struct BoundColumn {
  Column data;
  std::unordered_map<std::string, int32_t> code_of;  // categorical, list
};

// Group ids per item of a CAP column (CSR): categorical/list codes, bool 0/1,
// numeric bit patterns, text ids; missing values have no group.
struct CapGroups {
  std::vector<int64_t> offsets;
  std::vector<int64_t> groups;
};

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// Value families that may be compared with each other.
int Family(ColumnType t) {
  switch (t) {
    case ColumnType::kNumeric:
      return 1;
    case ColumnType::kBool:
      return 2;
    default:
      return 0;  // categorical, list, text: strings
  }
}

std::optional<double> ParseNumber(std::string_view s) {
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::optional<int> ParseBool(std::string_view s) {
  if (IEquals(s, "true") || s == "1" || IEquals(s, "yes")) return 1;
  if (IEquals(s, "false") || s == "0" || IEquals(s, "no")) return 0;
  return std::nullopt;
}

// ---------------------------------------------------------------- lexer

struct Token {
  enum class Kind { kIdent, kQuotedIdent, kString, kNumber, kParam, kPunct, kEnd };
  Kind kind = Kind::kEnd;
  std::string text;
  double number = 0;
  int col = 0;  // 1-based
};

const char* const kKeywords[] = {"WHEN", "INCLUDE", "EXCLUDE", "WHERE", "BOOST", "BURY",
                                 "PIN",  "AT",      "CAP",     "PER",   "AND",   "OR",
                                 "NOT",  "IN",      "BETWEEN", "TRUE",  "FALSE"};

bool IsKeyword(const Token& t) {
  if (t.kind != Token::Kind::kIdent) return false;
  for (const char* k : kKeywords) {
    if (IEquals(t.text, k)) return true;
  }
  return false;
}

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class Lexer {
 public:
  Lexer(std::string_view line, std::string prefix) : s_(line), prefix_(std::move(prefix)) {}

  Result<std::vector<Token>> Run() {
    std::vector<Token> out;
    size_t i = 0, last_end = 0;
    while (i < s_.size()) {
      const char c = s_[i];
      if (c == ' ' || c == '\t' || c == '\r') {
        ++i;
        continue;
      }
      if (c == '#') break;
      Token t;
      t.col = static_cast<int>(i) + 1;
      if (c == '"' || c == '`') {
        t.kind = c == '"' ? Token::Kind::kString : Token::Kind::kQuotedIdent;
        size_t j = i + 1;
        bool closed = false;
        while (j < s_.size()) {
          if (s_[j] == '\\' && j + 1 < s_.size()) {
            t.text += s_[j + 1];
            j += 2;
          } else if (s_[j] == c) {
            closed = true;
            ++j;
            break;
          } else {
            t.text += s_[j++];
          }
        }
        if (!closed) {
          return Error(t.col, c == '"' ? "unterminated string" : "unterminated `name`");
        }
        i = j;
      } else if (c == '$') {
        size_t j = i + 1;
        while (j < s_.size() && IsIdentChar(s_[j])) ++j;
        if (j == i + 1) return Error(t.col, "expected a parameter name after '$'");
        t.kind = Token::Kind::kParam;
        t.text = std::string(s_.substr(i + 1, j - i - 1));
        i = j;
      } else if (std::isdigit(static_cast<unsigned char>(c)) ||
                 ((c == '-' || c == '+' || c == '.') && i + 1 < s_.size() &&
                  (std::isdigit(static_cast<unsigned char>(s_[i + 1])) ||
                   (s_[i + 1] == '.' && c != '.')))) {
        size_t j = i + 1;
        while (j < s_.size() &&
               (std::isdigit(static_cast<unsigned char>(s_[j])) || s_[j] == '.' ||
                ((s_[j] == 'e' || s_[j] == 'E')) ||
                ((s_[j] == '-' || s_[j] == '+') && (s_[j - 1] == 'e' || s_[j - 1] == 'E')))) {
          ++j;
        }
        t.kind = Token::Kind::kNumber;
        t.text = std::string(s_.substr(i, j - i));
        auto v = ParseNumber(t.text);
        if (!v || (j < s_.size() && IsIdentChar(s_[j]))) {
          return Error(t.col, "malformed number '" + t.text + "'");
        }
        t.number = *v;
        i = j;
      } else if (IsIdentStart(c)) {
        size_t j = i + 1;
        while (j < s_.size() && IsIdentChar(s_[j])) ++j;
        t.kind = Token::Kind::kIdent;
        t.text = std::string(s_.substr(i, j - i));
        i = j;
      } else {
        static const char* const kPuncts[] = {"!=", "<>", "<=", ">=", "(", ")",
                                              ",",  ".",  "=",  "<",  ">"};
        t.kind = Token::Kind::kPunct;
        for (const char* p : kPuncts) {
          if (s_.substr(i).starts_with(p)) {
            t.text = p;
            break;
          }
        }
        if (t.text.empty()) return Error(t.col, std::string("unexpected character '") + c + "'");
        i += t.text.size();
      }
      last_end = i;
      out.push_back(std::move(t));
    }
    Token end;
    end.col = static_cast<int>(last_end) + 1;  // just after the last token
    out.push_back(end);
    return out;
  }

 private:
  Status Error(int col, const std::string& msg) const {
    return Status::InvalidArgument(prefix_ + std::to_string(col) + ": " + msg);
  }
  std::string_view s_;
  std::string prefix_;  // "source:line:"
};

}  // namespace

// ---------------------------------------------------------------- RuleSet::Impl

struct RuleSet::Impl {
  std::string source;
  std::vector<Node> nodes;
  std::vector<Rule> rules;
  bool bound = false;
  int32_t n = 0;
  std::vector<BoundColumn> columns;
  std::vector<CapGroups> cap_groups;
  // Per rule, for filter, BOOST and BURY rules whose WHERE does not depend on
  // the request: bit i of the WHERE result for item i (empty otherwise), so
  // that reranking tests a bit per candidate instead of walking the predicate.
  std::vector<std::vector<uint64_t>> matches;
  // When no rule depends on the request ($param, context, CurrentItem,
  // WHEN): the one answer of ForRequest, resolved at Bind and shared by
  // every request (resolving per request was a dozen allocations).
  std::shared_ptr<const RequestRules::State> request_independent;

  std::string Where(int line, int col) const {
    return source + ":" + std::to_string(line) + ":" + std::to_string(col);
  }
  Status Error(int line, int col, const std::string& msg) const {
    return Status::InvalidArgument(Where(line, col) + ": " + msg);
  }
};

namespace {

// ---------------------------------------------------------------- parser

class Parser {
 public:
  Parser(RuleSet::Impl* impl, int line, std::vector<Token> tokens)
      : impl_(impl), line_(line), t_(std::move(tokens)) {}

  // Parses one non-empty line into a rule.
  Result<Rule> ParseRule() {
    Rule r;
    r.line = line_;
    if (IsKw("WHEN")) {
      Next();
      VITRINE_ASSIGN_OR_RETURN(r.when, ParseOr(true));
    }
    const Token action = Cur();
    if (IsKw("INCLUDE") || IsKw("EXCLUDE")) {
      r.kind = IsKw("INCLUDE") ? Rule::Kind::kInclude : Rule::Kind::kExclude;
      Next();
      if (!IsKw("WHERE")) return Error(Cur().col, "expected WHERE after " + Upper(action.text));
      Next();
      VITRINE_ASSIGN_OR_RETURN(r.where, ParseOr(false));
    } else if (IsKw("BOOST") || IsKw("BURY")) {
      r.kind = IsKw("BOOST") ? Rule::Kind::kBoost : Rule::Kind::kBury;
      Next();
      if (Cur().kind != Token::Kind::kNumber || !(Cur().number > 0)) {
        return Error(Cur().col, "expected a positive factor after " + Upper(action.text));
      }
      r.factor = Cur().number;
      Next();
      if (!IsKw("WHERE")) return Error(Cur().col, "expected WHERE after the factor");
      Next();
      VITRINE_ASSIGN_OR_RETURN(r.where, ParseOr(false));
    } else if (IsKw("PIN")) {
      r.kind = Rule::Kind::kPin;
      Next();
      if (Cur().kind != Token::Kind::kString) {
        return Error(Cur().col, "expected a quoted item id after PIN");
      }
      r.pin_id = Cur().text;
      r.pin_id_col = Cur().col;
      Next();
      if (!IsKw("AT")) return Error(Cur().col, "expected AT after the item id");
      Next();
      VITRINE_ASSIGN_OR_RETURN(int64_t pos, PositiveInt("a position (1, 2, ...) after AT"));
      r.pin_position = static_cast<int32_t>(pos - 1);
    } else if (IsKw("CAP")) {
      r.kind = Rule::Kind::kCap;
      Next();
      VITRINE_ASSIGN_OR_RETURN(int64_t n, PositiveInt("a count (1, 2, ...) after CAP"));
      r.cap_limit = static_cast<int32_t>(n);
      if (!IsKw("PER")) return Error(Cur().col, "expected PER after the count");
      Next();
      if (!IsColumnToken(Cur())) return Error(Cur().col, "expected a column after PER");
      r.cap_column_name = Cur().text;
      r.cap_col = Cur().col;
      Next();
    } else if (r.when >= 0) {
      return Error(Cur().col,
                   "expected INCLUDE, EXCLUDE, BOOST, BURY, PIN or CAP after the WHEN condition");
    } else {
      return Error(Cur().col, "expected INCLUDE, EXCLUDE, BOOST, BURY, PIN, CAP or WHEN");
    }
    if (Cur().kind != Token::Kind::kEnd) {
      return Error(Cur().col, "unexpected '" + Cur().text + "' after the end of the rule");
    }
    if (r.where >= 0) Scan(r.where, &r);
    r.dynamic = r.dynamic || r.when >= 0;
    return r;
  }

 private:
  const Token& Cur() const { return t_[pos_]; }
  const Token& Peek(int ahead) const { return t_[std::min(pos_ + ahead, t_.size() - 1)]; }
  void Next() {
    if (pos_ + 1 < t_.size()) ++pos_;
  }
  bool IsKw(const char* kw) const {
    return Cur().kind == Token::Kind::kIdent && IEquals(Cur().text, kw);
  }
  bool IsPunct(const char* p) const { return Cur().kind == Token::Kind::kPunct && Cur().text == p; }
  static bool IsColumnToken(const Token& t) {
    return t.kind == Token::Kind::kQuotedIdent || (t.kind == Token::Kind::kIdent && !IsKeyword(t));
  }
  static std::string Upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }
  Status Error(int col, const std::string& msg) const { return impl_->Error(line_, col, msg); }

  Result<int64_t> PositiveInt(const std::string& what) {
    const Token& t = Cur();
    if (t.kind != Token::Kind::kNumber || t.number < 1 || t.number != std::floor(t.number) ||
        t.number > 1e9) {
      return Error(t.col, "expected " + what);
    }
    Next();
    return static_cast<int64_t>(t.number);
  }

  int Add(Node n) {
    n.line = line_;
    impl_->nodes.push_back(std::move(n));
    return static_cast<int>(impl_->nodes.size()) - 1;
  }

  // Marks what the predicate depends on.
  void Scan(int id, Rule* r) const {
    const Node& n = impl_->nodes[id];
    if (n.a >= 0) Scan(n.a, r);
    if (n.b >= 0) Scan(n.b, r);
    for (const Value& v : n.values) {
      if (v.kind == Value::Kind::kCurrentItem) r->uses_current_item = true;
      if (v.kind == Value::Kind::kCurrentItem || v.kind == Value::Kind::kParam ||
          v.kind == Value::Kind::kContext) {
        r->dynamic = true;
        r->where_dynamic = true;
      }
    }
  }

  Result<int> ParseOr(bool when) {
    VITRINE_ASSIGN_OR_RETURN(int a, ParseAnd(when));
    while (IsKw("OR")) {
      Next();
      VITRINE_ASSIGN_OR_RETURN(int b, ParseAnd(when));
      Node n;
      n.kind = Node::Kind::kOr;
      n.a = a;
      n.b = b;
      a = Add(std::move(n));
    }
    return a;
  }

  Result<int> ParseAnd(bool when) {
    VITRINE_ASSIGN_OR_RETURN(int a, ParseNot(when));
    while (IsKw("AND")) {
      Next();
      VITRINE_ASSIGN_OR_RETURN(int b, ParseNot(when));
      Node n;
      n.kind = Node::Kind::kAnd;
      n.a = a;
      n.b = b;
      a = Add(std::move(n));
    }
    return a;
  }

  Result<int> ParseNot(bool when) {
    if (IsKw("NOT")) {
      Next();
      VITRINE_ASSIGN_OR_RETURN(int a, ParseNot(when));
      Node n;
      n.kind = Node::Kind::kNot;
      n.a = a;
      return Add(std::move(n));
    }
    if (IsPunct("(")) {
      Next();
      VITRINE_ASSIGN_OR_RETURN(int a, ParseOr(when));
      if (!IsPunct(")")) return Error(Cur().col, "expected ')'");
      Next();
      return a;
    }
    return ParseComparison(when);
  }

  Result<int> ParseComparison(bool when) {
    Node n;
    n.kind = Node::Kind::kCompare;
    n.attr_col = Cur().col;
    const bool is_context = Cur().kind == Token::Kind::kIdent && IEquals(Cur().text, "context") &&
                            Peek(1).kind == Token::Kind::kPunct && Peek(1).text == ".";
    if (when) {
      if (!is_context) return Error(Cur().col, "expected context.<key> in a WHEN condition");
      Next();
      Next();
      if (!IsColumnToken(Cur()) && Cur().kind != Token::Kind::kIdent) {
        return Error(Cur().col, "expected a key after 'context.'");
      }
      n.on_context = true;
    } else {
      if (is_context) {
        return Error(
            Cur().col,
            "context.<key> can only be tested in a WHEN condition; expected a column name");
      }
      if (!IsColumnToken(Cur())) return Error(Cur().col, "expected a column name");
      if (IEquals(Cur().text, "CurrentItem") && Peek(1).kind == Token::Kind::kPunct &&
          Peek(1).text == ".") {
        return Error(Cur().col, "expected a column name (CurrentItem.<column> is a value)");
      }
    }
    n.attr = Cur().text;
    Next();
    // Operator.
    n.op_col = Cur().col;
    n.op_text = Cur().text;
    if (Cur().kind == Token::Kind::kPunct && Cur().text != "(" && Cur().text != ")" &&
        Cur().text != "," && Cur().text != ".") {
      const std::string& p = Cur().text;
      n.op = p == "="                   ? Op::kEq
             : (p == "!=" || p == "<>") ? Op::kNe
             : p == "<"                 ? Op::kLt
             : p == "<="                ? Op::kLe
             : p == ">"                 ? Op::kGt
                                        : Op::kGe;
      Next();
      VITRINE_ASSIGN_OR_RETURN(Value v, ParseValue(when, p));
      n.values.push_back(std::move(v));
    } else if (IsKw("IN") || IsKw("BETWEEN") ||
               (IsKw("NOT") && Peek(1).kind == Token::Kind::kIdent &&
                (IEquals(Peek(1).text, "IN") || IEquals(Peek(1).text, "BETWEEN")))) {
      bool negate = false;
      if (IsKw("NOT")) {
        negate = true;
        Next();
      }
      n.op_text = Upper(Cur().text);
      if (IsKw("IN")) {
        n.op = negate ? Op::kNotIn : Op::kIn;
        Next();
        if (IsPunct("(")) {
          std::string after = "'('";
          Next();
          while (true) {
            VITRINE_ASSIGN_OR_RETURN(Value v, ParseValue(when, after));
            n.values.push_back(std::move(v));
            if (IsPunct(")")) break;
            if (!IsPunct(",")) return Error(Cur().col, "expected ',' or ')' in the IN list");
            after = "','";
            Next();
          }
          Next();
        } else {
          VITRINE_ASSIGN_OR_RETURN(Value v, ParseValue(when, "IN"));
          n.values.push_back(std::move(v));
        }
      } else {
        n.op = negate ? Op::kNotBetween : Op::kBetween;
        Next();
        VITRINE_ASSIGN_OR_RETURN(Value lo, ParseValue(when, "BETWEEN"));
        if (!IsKw("AND")) return Error(Cur().col, "expected AND after the BETWEEN lower bound");
        Next();
        VITRINE_ASSIGN_OR_RETURN(Value hi, ParseValue(when, "AND"));
        n.values.push_back(std::move(lo));
        n.values.push_back(std::move(hi));
      }
    } else {
      return Error(
          Cur().col,
          "expected an operator (=, !=, <, <=, >, >=, IN, NOT IN, BETWEEN) after '" + n.attr + "'");
    }
    if (when && n.op != Op::kEq && n.op != Op::kNe && n.op != Op::kIn && n.op != Op::kNotIn) {
      for (const Value& v : n.values) {
        if (v.kind == Value::Kind::kString || v.kind == Value::Kind::kBool) {
          return Error(v.col, "expected a number after " + n.op_text);
        }
      }
    }
    return Add(std::move(n));
  }

  Result<Value> ParseValue(bool when, const std::string& after) {
    Value v;
    const Token& t = Cur();
    v.col = t.col;
    const bool dotted =
        t.kind == Token::Kind::kIdent && Peek(1).kind == Token::Kind::kPunct && Peek(1).text == ".";
    if (t.kind == Token::Kind::kString) {
      v.kind = Value::Kind::kString;
      v.text = t.text;
    } else if (t.kind == Token::Kind::kNumber) {
      v.kind = Value::Kind::kNumber;
      v.text = t.text;
      v.number = t.number;
    } else if (t.kind == Token::Kind::kIdent &&
               (IEquals(t.text, "true") || IEquals(t.text, "false"))) {
      v.kind = Value::Kind::kBool;
      v.boolean = IEquals(t.text, "true");
      v.text = v.boolean ? "true" : "false";
    } else if (t.kind == Token::Kind::kParam) {
      v.kind = Value::Kind::kParam;
      v.text = t.text;
    } else if (dotted && (IEquals(t.text, "CurrentItem") || IEquals(t.text, "context"))) {
      const bool current = IEquals(t.text, "CurrentItem");
      if (current && when) return Error(t.col, "CurrentItem is not allowed in a WHEN condition");
      Next();
      Next();
      if (Cur().kind != Token::Kind::kIdent && Cur().kind != Token::Kind::kQuotedIdent) {
        return Error(Cur().col, current ? "expected a column after 'CurrentItem.'"
                                        : "expected a key after 'context.'");
      }
      v.kind = current ? Value::Kind::kCurrentItem : Value::Kind::kContext;
      v.text = Cur().text;
    } else {
      return Error(t.col, "expected a value after " + after);
    }
    Next();
    return v;
  }

  RuleSet::Impl* impl_;
  int line_;
  std::vector<Token> t_;
  size_t pos_ = 0;
};

// ---------------------------------------------------------------- binding

std::string ColumnList(const Catalog& catalog) {
  std::string s;
  for (const Column& c : catalog.columns) {
    if (!s.empty()) s += ", ";
    s += c.name;
  }
  return s.empty() ? "none" : s;
}

const Column* FindColumn(const Catalog& catalog, std::string_view name) {
  for (const Column& c : catalog.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

CapGroups BuildCapGroups(const Column& c, int32_t n) {
  CapGroups g;
  g.offsets.reserve(static_cast<size_t>(n) + 1);
  g.offsets.push_back(0);
  std::unordered_map<std::string, int64_t> text_ids;
  for (int32_t i = 0; i < n; ++i) {
    switch (c.type) {
      case ColumnType::kCategorical:
        if (c.codes[i] >= 0) g.groups.push_back(c.codes[i]);
        break;
      case ColumnType::kList: {
        const size_t b = g.groups.size();
        for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
          const int64_t code = c.list_codes[j];
          // A value repeated in one item's list counts once.
          if (code >= 0 &&
              std::find(g.groups.begin() + b, g.groups.end(), code) == g.groups.end()) {
            g.groups.push_back(code);
          }
        }
        break;
      }
      case ColumnType::kNumeric:
        if (!std::isnan(c.numbers[i])) {
          g.groups.push_back(std::bit_cast<int64_t>(c.numbers[i] + 0.0));  // -0 -> +0
        }
        break;
      case ColumnType::kBool:
        if (c.bools[i] >= 0) g.groups.push_back(c.bools[i]);
        break;
      case ColumnType::kText:
        if (!c.texts[i].empty()) {
          g.groups.push_back(
              text_ids.emplace(c.texts[i], static_cast<int64_t>(text_ids.size())).first->second);
        }
        break;
      case ColumnType::kSkip:
        break;
    }
    g.offsets.push_back(static_cast<int64_t>(g.groups.size()));
  }
  return g;
}

// Checks that a column has as many values as the catalog has items, so per
// item lookups never run off the end.
bool ColumnSizeOk(const Column& c, int32_t n) {
  const size_t un = static_cast<size_t>(n);
  switch (c.type) {
    case ColumnType::kCategorical:
      return c.codes.size() == un;
    case ColumnType::kNumeric:
      return c.numbers.size() == un;
    case ColumnType::kBool:
      return c.bools.size() == un;
    case ColumnType::kList:
      return c.list_offsets.size() == un + 1 &&
             static_cast<size_t>(c.list_offsets.back()) <= c.list_codes.size();
    case ColumnType::kText:
      return c.texts.size() == un;
    case ColumnType::kSkip:
      return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------- RequestRules::State

// A resolved right-hand value: the strings, dictionary codes or numbers it
// stands for in the compared column's terms.
struct Operand {
  bool absent = false;  // context key / CurrentItem value missing
  std::vector<std::string> strs;
  std::vector<int32_t> codes;  // categorical/list: dictionary codes of strs
  std::vector<double> nums;    // numeric; bool as 0/1
};

struct RequestRules::State {
  const RuleSet::Impl* impl = nullptr;
  std::vector<char> active;                    // per rule
  std::vector<uint32_t> filters;               // active INCLUDE/EXCLUDE rules, in rule order
  std::vector<uint32_t> boosts;                // active BOOST/BURY rules, in rule order
  std::vector<std::vector<Operand>> operands;  // per node, one per value
  std::vector<PinRule> pins;
  std::vector<CapRule> caps;
};

namespace {

using State = RequestRules::State;

// Raw text(s) of a $param or context value; nullopt when a context key or
// CurrentItem is absent.
Result<std::optional<std::vector<std::string>>> RawValues(const RuleSet::Impl& impl, const Node& n,
                                                          const Value& v,
                                                          const RequestContext& ctx) {
  std::string raw;
  if (v.kind == Value::Kind::kParam) {
    auto it = ctx.params.find(v.text);
    if (it == ctx.params.end()) {
      return impl.Error(n.line, v.col,
                        "no value for parameter $" + v.text + " (pass --param " + v.text + "=...)");
    }
    raw = it->second;
    if (n.op == Op::kIn || n.op == Op::kNotIn) {
      std::vector<std::string> parts;
      size_t b = 0;
      while (true) {
        size_t e = raw.find(',', b);
        std::string part = raw.substr(b, e == std::string::npos ? std::string::npos : e - b);
        while (!part.empty() && part.front() == ' ') part.erase(part.begin());
        while (!part.empty() && part.back() == ' ') part.pop_back();
        parts.push_back(part);
        if (e == std::string::npos) break;
        b = e + 1;
      }
      return std::optional<std::vector<std::string>>(parts);
    }
  } else {  // kContext
    auto it = ctx.context.find(v.text);
    if (it == ctx.context.end()) return std::optional<std::vector<std::string>>();
    raw = it->second;
  }
  return std::optional<std::vector<std::string>>(std::vector<std::string>{raw});
}

std::string ValueName(const Value& v) {
  return v.kind == Value::Kind::kParam ? "$" + v.text : "context." + v.text;
}

// Resolves value `v` of item comparison `n` for request `ctx`.
Result<Operand> ResolveItemValue(const RuleSet::Impl& impl, const Node& n, const Value& v,
                                 const RequestContext& ctx) {
  const BoundColumn& col = impl.columns[n.column];
  const ColumnType type = col.data.type;
  Operand o;
  switch (v.kind) {
    case Value::Kind::kString:
      o.strs.push_back(v.text);
      break;
    case Value::Kind::kNumber:
      if (type == ColumnType::kNumeric) {
        o.nums.push_back(v.number);
      } else {
        o.strs.push_back(v.text);
      }
      break;
    case Value::Kind::kBool:
      o.nums.push_back(v.boolean ? 1 : 0);
      break;
    case Value::Kind::kParam:
    case Value::Kind::kContext: {
      VITRINE_ASSIGN_OR_RETURN(auto raw, RawValues(impl, n, v, ctx));
      if (!raw) {
        o.absent = true;
        break;
      }
      for (const std::string& s : *raw) {
        if (type == ColumnType::kNumeric) {
          auto x = ParseNumber(s);
          if (!x) {
            return impl.Error(n.line, v.col,
                              ValueName(v) + ": column '" + col.data.name +
                                  "' is numeric, expected a number, got '" + s + "'");
          }
          o.nums.push_back(*x);
        } else if (type == ColumnType::kBool) {
          auto b = ParseBool(s);
          if (!b) {
            return impl.Error(n.line, v.col,
                              ValueName(v) + ": column '" + col.data.name +
                                  "' is bool, expected true or false, got '" + s + "'");
          }
          o.nums.push_back(*b);
        } else {
          o.strs.push_back(s);
        }
      }
      break;
    }
    case Value::Kind::kCurrentItem: {
      const Column& c = impl.columns[v.column].data;
      const int32_t i = *ctx.current_item;
      switch (c.type) {
        case ColumnType::kCategorical:
          if (c.codes[i] >= 0) o.strs.push_back(c.dictionary[c.codes[i]]);
          break;
        case ColumnType::kList:
          for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
            if (c.list_codes[j] >= 0) o.strs.push_back(c.dictionary[c.list_codes[j]]);
          }
          break;
        case ColumnType::kText:
          if (!c.texts[i].empty()) o.strs.push_back(c.texts[i]);
          break;
        case ColumnType::kNumeric:
          if (!std::isnan(c.numbers[i])) o.nums.push_back(c.numbers[i]);
          break;
        case ColumnType::kBool:
          if (c.bools[i] >= 0) o.nums.push_back(c.bools[i]);
          break;
        case ColumnType::kSkip:
          break;
      }
      o.absent = o.strs.empty() && o.nums.empty();
      break;
    }
  }
  if (type == ColumnType::kCategorical || type == ColumnType::kList) {
    for (const std::string& s : o.strs) {
      auto it = col.code_of.find(s);
      if (it != col.code_of.end()) o.codes.push_back(it->second);
    }
  }
  return o;
}

// Evaluates a WHEN condition node against the request context.
Result<bool> EvalWhen(const RuleSet::Impl& impl, int id, const RequestContext& ctx) {
  const Node& n = impl.nodes[id];
  switch (n.kind) {
    case Node::Kind::kAnd: {
      VITRINE_ASSIGN_OR_RETURN(bool a, EvalWhen(impl, n.a, ctx));
      if (!a) return false;
      return EvalWhen(impl, n.b, ctx);
    }
    case Node::Kind::kOr: {
      VITRINE_ASSIGN_OR_RETURN(bool a, EvalWhen(impl, n.a, ctx));
      if (a) return true;
      return EvalWhen(impl, n.b, ctx);
    }
    case Node::Kind::kNot: {
      VITRINE_ASSIGN_OR_RETURN(bool a, EvalWhen(impl, n.a, ctx));
      return !a;
    }
    case Node::Kind::kCompare:
      break;
  }
  const bool negated = n.op == Op::kNe || n.op == Op::kNotIn || n.op == Op::kNotBetween;
  auto lhs_it = ctx.context.find(n.attr);
  if (lhs_it == ctx.context.end()) return negated;  // absent: positive tests fail
  const std::string& lhs = lhs_it->second;
  const std::optional<double> lhs_num = ParseNumber(lhs);
  // Each value as (text, number-if-numeric-literal-or-parsable, is number literal, bool literal).
  struct V {
    std::string text;
    std::optional<double> num;
    bool numeric_literal = false;
    bool bool_literal = false;
    bool b = false;
    bool absent = false;  // a context key that is not set matches nothing
  };
  std::vector<V> vals;
  for (const Value& v : n.values) {
    if (v.kind == Value::Kind::kParam || v.kind == Value::Kind::kContext) {
      VITRINE_ASSIGN_OR_RETURN(auto raw, RawValues(impl, n, v, ctx));
      if (!raw) {
        vals.push_back(V{});
        vals.back().absent = true;
        continue;
      }
      for (const std::string& s : *raw) vals.push_back(V{s, ParseNumber(s)});
    } else {
      V x{v.text, std::nullopt};
      if (v.kind == Value::Kind::kNumber) {
        x.num = v.number;
        x.numeric_literal = true;
      }
      if (v.kind == Value::Kind::kBool) {
        x.bool_literal = true;
        x.b = v.boolean;
      }
      vals.push_back(x);
    }
  }
  auto equals = [&](const V& v) {
    if (v.absent) return false;
    if (v.numeric_literal) return lhs_num && *lhs_num == *v.num;
    if (v.bool_literal) {
      auto b = ParseBool(lhs);
      return b && (*b == 1) == v.b;
    }
    return lhs == v.text;
  };
  bool result = false;
  switch (n.op) {
    case Op::kEq:
    case Op::kNe:
    case Op::kIn:
    case Op::kNotIn:
      for (const V& v : vals) result = result || equals(v);
      break;
    case Op::kBetween:
    case Op::kNotBetween:
      result = lhs_num && vals[0].num && vals[1].num && *vals[0].num <= *lhs_num &&
               *lhs_num <= *vals[1].num;
      break;
    default: {
      if (!lhs_num || !vals[0].num) {
        result = false;
        break;
      }
      const double x = *lhs_num, y = *vals[0].num;
      result = n.op == Op::kLt   ? x < y
               : n.op == Op::kLe ? x <= y
               : n.op == Op::kGt ? x > y
                                 : x >= y;
    }
  }
  return negated ? !result : result;
}

Status ResolveOperands(const RuleSet::Impl& impl, int id, const RequestContext& ctx, State* s) {
  const Node& n = impl.nodes[id];
  if (n.a >= 0) VITRINE_RETURN_IF_ERROR(ResolveOperands(impl, n.a, ctx, s));
  if (n.b >= 0) VITRINE_RETURN_IF_ERROR(ResolveOperands(impl, n.b, ctx, s));
  if (n.kind != Node::Kind::kCompare) return Status::OK();
  auto& ops = s->operands[id];
  ops.clear();
  for (const Value& v : n.values) {
    VITRINE_ASSIGN_OR_RETURN(Operand o, ResolveItemValue(impl, n, v, ctx));
    ops.push_back(std::move(o));
  }
  return Status::OK();
}

// Does item `i`'s value equal any of the operands?
bool EqMatch(const BoundColumn& col, int32_t i, const std::vector<Operand>& ops) {
  const Column& c = col.data;
  auto has_code = [&](int32_t code) {
    for (const Operand& o : ops) {
      if (std::find(o.codes.begin(), o.codes.end(), code) != o.codes.end()) return true;
    }
    return false;
  };
  auto has_num = [&](double x) {
    for (const Operand& o : ops) {
      if (std::find(o.nums.begin(), o.nums.end(), x) != o.nums.end()) return true;
    }
    return false;
  };
  switch (c.type) {
    case ColumnType::kCategorical:
      return c.codes[i] >= 0 && has_code(c.codes[i]);
    case ColumnType::kList:
      for (int64_t j = c.list_offsets[i]; j < c.list_offsets[i + 1]; ++j) {
        if (c.list_codes[j] >= 0 && has_code(c.list_codes[j])) return true;
      }
      return false;
    case ColumnType::kNumeric:
      return !std::isnan(c.numbers[i]) && has_num(c.numbers[i]);
    case ColumnType::kBool:
      return c.bools[i] >= 0 && has_num(c.bools[i]);
    case ColumnType::kText:
      for (const Operand& o : ops) {
        if (std::find(o.strs.begin(), o.strs.end(), c.texts[i]) != o.strs.end()) return true;
      }
      return false;
    case ColumnType::kSkip:
      return false;
  }
  return false;
}

// [lo, hi] bounds of a range comparison; nullopt when it can match nothing.
std::optional<std::pair<double, double>> RangeOf(const Node& n, const std::vector<Operand>& ops) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  for (const Operand& o : ops) {
    if (o.nums.empty()) return std::nullopt;
  }
  const double v = ops[0].nums[0];
  switch (n.op) {
    case Op::kLt:
      return std::make_pair(-kInf, std::nextafter(v, -kInf));
    case Op::kLe:
      return std::make_pair(-kInf, v);
    case Op::kGt:
      return std::make_pair(std::nextafter(v, kInf), kInf);
    case Op::kGe:
      return std::make_pair(v, kInf);
    default: {  // BETWEEN
      const double hi = ops[1].nums[0];
      if (v > hi) return std::nullopt;
      return std::make_pair(v, hi);
    }
  }
}

bool CompareMatch(const RuleSet::Impl& impl, const Node& n, const std::vector<Operand>& ops,
                  int32_t i) {
  const BoundColumn& col = impl.columns[n.column];
  switch (n.op) {
    case Op::kEq:
    case Op::kIn:
      return EqMatch(col, i, ops);
    case Op::kNe:
    case Op::kNotIn:
      return !EqMatch(col, i, ops);
    case Op::kNotBetween: {
      auto r = RangeOf(n, ops);
      const double x = col.data.numbers[i];
      return !(r && !std::isnan(x) && r->first <= x && x <= r->second);
    }
    default: {
      auto r = RangeOf(n, ops);
      const double x = col.data.numbers[i];
      return r && !std::isnan(x) && r->first <= x && x <= r->second;
    }
  }
}

bool NodeMatch(const State& s, int id, int32_t i) {
  const Node& n = s.impl->nodes[id];
  switch (n.kind) {
    case Node::Kind::kAnd:
      return NodeMatch(s, n.a, i) && NodeMatch(s, n.b, i);
    case Node::Kind::kOr:
      return NodeMatch(s, n.a, i) || NodeMatch(s, n.b, i);
    case Node::Kind::kNot:
      return !NodeMatch(s, n.a, i);
    case Node::Kind::kCompare:
      return CompareMatch(*s.impl, n, s.operands[id], i);
  }
  return false;
}

// Does rule `r`'s WHERE hold for item `i`? Precomputed bits when there are.
bool RuleMatch(const State& s, size_t r, int32_t i) {
  const RuleSet::Impl& impl = *s.impl;
  if (r < impl.matches.size() && !impl.matches[r].empty()) {
    return (impl.matches[r][static_cast<uint32_t>(i) >> 6] >> (i & 63)) & 1;
  }
  return NodeMatch(s, impl.rules[r].where, i);
}

Result<Bitmap> NodeBitmap(const State& s, int id, const AttributeIndex& index) {
  const RuleSet::Impl& impl = *s.impl;
  const Node& n = impl.nodes[id];
  switch (n.kind) {
    case Node::Kind::kAnd: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap a, NodeBitmap(s, n.a, index));
      if (a.isEmpty()) return a;
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, NodeBitmap(s, n.b, index));
      return a & b;
    }
    case Node::Kind::kOr: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap a, NodeBitmap(s, n.a, index));
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, NodeBitmap(s, n.b, index));
      return a | b;
    }
    case Node::Kind::kNot: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap a, NodeBitmap(s, n.a, index));
      return index.Not(a);
    }
    case Node::Kind::kCompare:
      break;
  }
  const BoundColumn& col = impl.columns[n.column];
  const std::vector<Operand>& ops = s.operands[id];
  const std::string& name = col.data.name;
  if (col.data.type == ColumnType::kText) {
    // Text is not indexed (AttributeIndex): scan the copied column.
    Bitmap out;
    for (int32_t i = 0; i < impl.n; ++i) {
      if (CompareMatch(impl, n, ops, i)) out.add(static_cast<uint32_t>(i));
    }
    return out;
  }
  auto eq = [&]() -> Result<Bitmap> {
    Bitmap out;
    for (const Operand& o : ops) {
      if (col.data.type == ColumnType::kCategorical || col.data.type == ColumnType::kList) {
        for (int32_t code : o.codes) {
          VITRINE_ASSIGN_OR_RETURN(Bitmap b, index.Equals(name, col.data.dictionary[code]));
          out |= b;
        }
      } else {
        for (double x : o.nums) {
          VITRINE_ASSIGN_OR_RETURN(Bitmap b, col.data.type == ColumnType::kBool
                                                 ? index.Equals(name, x != 0 ? "true" : "false")
                                                 : index.Range(name, x, x));
          out |= b;
        }
      }
    }
    return out;
  };
  auto range = [&]() -> Result<Bitmap> {
    auto r = RangeOf(n, ops);
    if (!r) return Bitmap();
    return index.Range(name, r->first, r->second);
  };
  switch (n.op) {
    case Op::kEq:
    case Op::kIn:
      return eq();
    case Op::kNe:
    case Op::kNotIn: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, eq());
      return index.Not(b);
    }
    case Op::kNotBetween: {
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, range());
      return index.Not(b);
    }
    default:
      return range();
  }
}

// Resolves the rules that apply to request `ctx` (only the request-independent
// filters if `static_only`) into a fresh State. `per_item` skips the operands
// of predicates with precomputed matches: per-item questions (RuleMatch) do
// not need them, bitmaps (NodeBitmap) do.
Status CheckCurrentItem(const RuleSet::Impl& impl, const RequestContext& ctx) {
  if (impl.bound && ctx.current_item && (*ctx.current_item < 0 || *ctx.current_item >= impl.n)) {
    return Status::InvalidArgument("current item index " + std::to_string(*ctx.current_item) +
                                   " outside the catalog of " + std::to_string(impl.n) + " items");
  }
  return Status::OK();
}

Result<State> Resolve(const RuleSet::Impl& impl, const RequestContext& ctx, bool static_only,
                      bool per_item = false) {
  // An empty rule set needs no catalog; any other must be bound first.
  if (!impl.bound && !impl.rules.empty()) return Status::Internal("RuleSet used before Bind()");
  VITRINE_RETURN_IF_ERROR(CheckCurrentItem(impl, ctx));
  State s;
  s.impl = &impl;
  s.active.assign(impl.rules.size(), 0);
  s.operands.resize(impl.nodes.size());
  for (size_t r = 0; r < impl.rules.size(); ++r) {
    const Rule& rule = impl.rules[r];
    if (static_only && (rule.dynamic || !rule.IsFilter())) continue;
    if (rule.uses_current_item && !ctx.current_item) continue;
    if (rule.when >= 0) {
      VITRINE_ASSIGN_OR_RETURN(bool on, EvalWhen(impl, rule.when, ctx));
      if (!on) continue;
    }
    const bool precomputed = r < impl.matches.size() && !impl.matches[r].empty();
    if (rule.where >= 0 && !(per_item && precomputed)) {
      VITRINE_RETURN_IF_ERROR(ResolveOperands(impl, rule.where, ctx, &s));
    }
    s.active[r] = 1;
    if (rule.IsFilter()) s.filters.push_back(static_cast<uint32_t>(r));
    if (rule.kind == Rule::Kind::kBoost || rule.kind == Rule::Kind::kBury) {
      s.boosts.push_back(static_cast<uint32_t>(r));
    }
    if (rule.kind == Rule::Kind::kPin) {
      s.pins.push_back(PinRule{rule.pin_item, rule.pin_position, rule.line});
    } else if (rule.kind == Rule::Kind::kCap) {
      const CapGroups* g = &impl.cap_groups[rule.cap_groups];
      const int32_t n = impl.n;
      s.caps.push_back(CapRule{rule.cap_limit,
                               [g, n](int32_t item, std::vector<int64_t>* out) {
                                 if (item < 0 || item >= n) return;
                                 out->insert(out->end(), g->groups.begin() + g->offsets[item],
                                             g->groups.begin() + g->offsets[item + 1]);
                               },
                               g->offsets, g->groups});
    }
  }
  return s;
}

// Applies the active filter rules of `s` (optionally only dynamic ones) to `allowed`.
Status ApplyFilters(const State& s, const AttributeIndex& index, bool dynamic_only,
                    Bitmap* allowed) {
  const RuleSet::Impl& impl = *s.impl;
  // INCLUDEs first, then EXCLUDEs: the result does not depend on rule order.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t r = 0; r < impl.rules.size(); ++r) {
      const Rule& rule = impl.rules[r];
      if (!s.active[r] || !rule.IsFilter() || (dynamic_only && !rule.dynamic)) continue;
      if ((rule.kind == Rule::Kind::kInclude) != (pass == 0)) continue;
      VITRINE_ASSIGN_OR_RETURN(Bitmap b, NodeBitmap(s, rule.where, index));
      if (pass == 0) {
        *allowed &= b;
      } else {
        *allowed -= b;
      }
    }
  }
  return Status::OK();
}

}  // namespace

// ---------------------------------------------------------------- RuleSet

RuleSet::RuleSet() : impl_(std::make_unique<Impl>()) {}
RuleSet::RuleSet(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RuleSet::~RuleSet() = default;
RuleSet::RuleSet(RuleSet&&) noexcept = default;
RuleSet& RuleSet::operator=(RuleSet&&) noexcept = default;

Result<RuleSet> RuleSet::Parse(std::string_view text, std::string source_name) {
  auto impl = std::make_unique<Impl>();
  impl->source = std::move(source_name);
  int line_no = 0;
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    const std::string_view line = text.substr(b, e - b);
    ++line_no;
    Lexer lexer(line, impl->source + ":" + std::to_string(line_no) + ":");
    VITRINE_ASSIGN_OR_RETURN(std::vector<Token> tokens, lexer.Run());
    if (tokens.size() > 1) {  // not blank / comment only
      Parser parser(impl.get(), line_no, std::move(tokens));
      VITRINE_ASSIGN_OR_RETURN(Rule rule, parser.ParseRule());
      impl->rules.push_back(std::move(rule));
    }
    b = e + 1;
  }
  return RuleSet(std::move(impl));
}

Result<RuleSet> RuleSet::ParseFile(const std::filesystem::path& path) {
  VITRINE_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return Parse(text, path.string());
}

Status RuleSet::Bind(const Catalog& catalog) {
  Impl b = *impl_;  // bind a copy: on error the RuleSet is unchanged
  b.n = catalog.size();
  b.columns.clear();
  b.cap_groups.clear();
  auto use_column = [&](const std::string& name, int line, int col,
                        const std::string& what) -> Result<int> {
    for (size_t i = 0; i < b.columns.size(); ++i) {
      if (b.columns[i].data.name == name) return static_cast<int>(i);
    }
    const Column* c = FindColumn(catalog, name);
    if (c == nullptr) {
      return b.Error(
          line, col,
          "unknown column '" + name + "'" + what + " (columns: " + ColumnList(catalog) + ")");
    }
    if (!ColumnSizeOk(*c, b.n)) {
      return b.Error(line, col, "catalog column '" + name + "' does not have one value per item");
    }
    BoundColumn bc;
    bc.data = *c;
    for (size_t k = 0; k < c->dictionary.size(); ++k) {
      bc.code_of.emplace(c->dictionary[k], static_cast<int32_t>(k));
    }
    b.columns.push_back(std::move(bc));
    return static_cast<int>(b.columns.size()) - 1;
  };
  // Binds every item comparison under node `id`.
  std::function<Status(int)> bind_node = [&](int id) -> Status {
    Node& n = b.nodes[id];
    if (n.a >= 0) VITRINE_RETURN_IF_ERROR(bind_node(n.a));
    if (n.b >= 0) VITRINE_RETURN_IF_ERROR(bind_node(n.b));
    if (n.kind != Node::Kind::kCompare) return Status::OK();
    VITRINE_ASSIGN_OR_RETURN(n.column, use_column(n.attr, n.line, n.attr_col, ""));
    const ColumnType type = b.columns[n.column].data.type;
    const std::string tname = ColumnTypeName(type);
    const bool ordered =
        n.op != Op::kEq && n.op != Op::kNe && n.op != Op::kIn && n.op != Op::kNotIn;
    if (ordered && type != ColumnType::kNumeric) {
      return b.Error(n.line, n.op_col,
                     "'" + n.op_text + "' needs a numeric column; '" + n.attr + "' is " + tname);
    }
    for (Value& v : n.values) {
      const std::string expected = type == ColumnType::kNumeric ? "a number"
                                   : type == ColumnType::kBool  ? "true or false"
                                                                : "a string";
      const bool bad = (v.kind == Value::Kind::kString && Family(type) != 0) ||
                       (v.kind == Value::Kind::kNumber && type == ColumnType::kBool) ||
                       (v.kind == Value::Kind::kBool && type != ColumnType::kBool);
      if (bad) {
        return b.Error(n.line, v.col,
                       "column '" + n.attr + "' is " + tname + ", expected " + expected);
      }
      if (v.kind == Value::Kind::kCurrentItem) {
        VITRINE_ASSIGN_OR_RETURN(v.column,
                                 use_column(v.text, n.line, v.col, " in CurrentItem." + v.text));
        const ColumnType ct = b.columns[v.column].data.type;
        if (Family(ct) != Family(type) || (ordered && ct != ColumnType::kNumeric)) {
          return b.Error(n.line, v.col,
                         "column '" + n.attr + "' is " + tname + " but CurrentItem." + v.text +
                             " is " + ColumnTypeName(ct));
        }
      }
    }
    return Status::OK();
  };
  for (Rule& r : b.rules) {
    if (r.where >= 0) VITRINE_RETURN_IF_ERROR(bind_node(r.where));
    if (r.kind == Rule::Kind::kPin) {
      auto item = catalog.ids.Find(r.pin_id);
      if (!item) return b.Error(r.line, r.pin_id_col, "unknown item id '" + r.pin_id + "'");
      r.pin_item = *item;
    } else if (r.kind == Rule::Kind::kCap) {
      VITRINE_ASSIGN_OR_RETURN(int c, use_column(r.cap_column_name, r.line, r.cap_col, ""));
      r.cap_groups = static_cast<int>(b.cap_groups.size());
      b.cap_groups.push_back(BuildCapGroups(b.columns[c].data, b.n));
    }
  }
  b.bound = true;
  b.matches.assign(b.rules.size(), {});
  for (size_t r = 0; r < b.rules.size(); ++r) {
    const Rule& rule = b.rules[r];
    const bool per_item_rule =
        rule.IsFilter() || rule.kind == Rule::Kind::kBoost || rule.kind == Rule::Kind::kBury;
    if (!per_item_rule || rule.where < 0 || rule.where_dynamic) continue;
    State s;
    s.impl = &b;
    s.operands.resize(b.nodes.size());
    VITRINE_RETURN_IF_ERROR(ResolveOperands(b, rule.where, RequestContext{}, &s));
    std::vector<uint64_t>& bits = b.matches[r];
    bits.assign((static_cast<size_t>(b.n) + 63) / 64, 0);
    for (int32_t i = 0; i < b.n; ++i) {
      if (NodeMatch(s, rule.where, i)) {
        bits[static_cast<uint32_t>(i) >> 6] |= uint64_t{1} << (i & 63);
      }
    }
  }
  *impl_ = std::move(b);
  impl_->request_independent.reset();  // from an earlier Bind: points into old columns
  const bool any_dynamic = std::any_of(impl_->rules.begin(), impl_->rules.end(),
                                       [](const Rule& r) { return r.dynamic; });
  if (!any_dynamic) {
    // (Should it fail, every request resolves for itself and reports it.)
    Result<State> s = Resolve(*impl_, RequestContext{}, /*static_only=*/false, /*per_item=*/true);
    if (s.ok()) impl_->request_independent = std::make_shared<const State>(std::move(*s));
  }
  return Status::OK();
}

int RuleSet::num_rules() const { return static_cast<int>(impl_->rules.size()); }

bool RuleSet::HasCurrentItemFilters() const {
  for (const Rule& r : impl_->rules) {
    if (r.IsFilter() && r.uses_current_item) return true;
  }
  return false;
}

bool RuleSet::FiltersDependOnRequest() const {
  for (const Rule& r : impl_->rules) {
    if (r.IsFilter() && r.dynamic) return true;
  }
  return false;
}

Result<Bitmap> RuleSet::StaticAllowedItems(const AttributeIndex& index) const {
  VITRINE_ASSIGN_OR_RETURN(State s, Resolve(*impl_, RequestContext{}, /*static_only=*/true));
  if (impl_->bound && index.size() != static_cast<uint32_t>(impl_->n)) {
    return Status::InvalidArgument("attribute index has " + std::to_string(index.size()) +
                                   " items, rules were bound to a catalog of " +
                                   std::to_string(impl_->n));
  }
  Bitmap allowed = index.All();
  VITRINE_RETURN_IF_ERROR(ApplyFilters(s, index, /*dynamic_only=*/false, &allowed));
  return allowed;
}

Result<Bitmap> RuleSet::AllowedItems(const AttributeIndex& index, const RequestContext& ctx,
                                     const Bitmap* static_allowed) const {
  VITRINE_ASSIGN_OR_RETURN(State s, Resolve(*impl_, ctx, /*static_only=*/false));
  if (impl_->bound && index.size() != static_cast<uint32_t>(impl_->n)) {
    return Status::InvalidArgument("attribute index has " + std::to_string(index.size()) +
                                   " items, rules were bound to a catalog of " +
                                   std::to_string(impl_->n));
  }
  Bitmap allowed = static_allowed != nullptr ? *static_allowed : index.All();
  VITRINE_RETURN_IF_ERROR(
      ApplyFilters(s, index, /*dynamic_only=*/static_allowed != nullptr, &allowed));
  return allowed;
}

Result<RequestRules> RuleSet::ForRequest(const RequestContext& ctx) const {
  RequestRules rr;
  if (impl_->request_independent != nullptr) {
    VITRINE_RETURN_IF_ERROR(CheckCurrentItem(*impl_, ctx));
    rr.s_ = impl_->request_independent;
    return rr;
  }
  VITRINE_ASSIGN_OR_RETURN(State s, Resolve(*impl_, ctx, /*static_only=*/false, /*per_item=*/true));
  rr.s_ = std::make_shared<const State>(std::move(s));
  return rr;
}

// ---------------------------------------------------------------- RequestRules

RequestRules::RequestRules() {
  static const std::shared_ptr<const State> kEmpty = std::make_shared<const State>();
  s_ = kEmpty;
}
RequestRules::~RequestRules() = default;
RequestRules::RequestRules(RequestRules&&) noexcept = default;
RequestRules& RequestRules::operator=(RequestRules&&) noexcept = default;

bool RequestRules::Allowed(int32_t item) const {
  if (s_->impl == nullptr) return true;
  const RuleSet::Impl& impl = *s_->impl;
  if (item < 0 || (impl.bound && item >= impl.n)) return false;
  for (uint32_t r : s_->filters) {
    const bool match = RuleMatch(*s_, r, item);
    if (match != (impl.rules[r].kind == Rule::Kind::kInclude)) return false;
  }
  return true;
}

double RequestRules::BoostFactor(int32_t item, std::vector<int>* applied) const {
  if (s_->impl == nullptr) return 1.0;
  const RuleSet::Impl& impl = *s_->impl;
  if (item < 0 || (impl.bound && item >= impl.n)) return 1.0;
  double f = 1.0;
  for (uint32_t r : s_->boosts) {
    const Rule& rule = impl.rules[r];
    if (!RuleMatch(*s_, r, item)) continue;
    f = rule.kind == Rule::Kind::kBoost ? f * rule.factor : f / rule.factor;
    if (applied != nullptr) applied->push_back(rule.line);
  }
  return f;
}

void RequestRules::Evaluate(std::span<const int32_t> items, std::span<uint8_t> allowed,
                            std::span<double> factor) const {
  const size_t n = items.size();
  const RuleSet::Impl* impl = s_->impl;
  // allowed[] starts as "inside the catalog", as in Allowed and BoostFactor:
  // other items are not allowed and get factor 1; rules see only the rest.
  for (size_t j = 0; j < n; ++j) {
    allowed[j] = items[j] >= 0 && (impl == nullptr || !impl->bound || items[j] < impl->n);
    factor[j] = 1.0;
  }
  if (impl == nullptr) {
    std::fill(allowed.begin(), allowed.end(), uint8_t{1});
    return;
  }
  // Rule r's precomputed match bits (Bind), or null when it depends on the
  // request and has to be evaluated item by item.
  auto bits_of = [&](uint32_t r) -> const uint64_t* {
    return r < impl->matches.size() && !impl->matches[r].empty() ? impl->matches[r].data()
                                                                 : nullptr;
  };
  // Does precomputed rule `bits` match items[j]? False for items no longer
  // allowed, without a branch: whether an item matches is data, and
  // branching on it mispredicted often enough to matter in the rerank.
  auto bit_match = [&](const uint64_t* bits, size_t j) {
    const uint32_t i = allowed[j] ? static_cast<uint32_t>(items[j]) : 0u;
    return (allowed[j] & (bits[i >> 6] >> (i & 63))) & 1;
  };
  // Boosts first, while allowed[] still marks exactly the valid items.
  for (uint32_t r : s_->boosts) {
    const Rule& rule = impl->rules[r];
    const bool boost = rule.kind == Rule::Kind::kBoost;
    const uint64_t* bits = bits_of(r);
    for (size_t j = 0; j < n; ++j) {
      bool match;
      if (bits != nullptr) {
        match = bit_match(bits, j);
      } else {
        match = allowed[j] && NodeMatch(*s_, rule.where, items[j]);
      }
      const double f = boost ? factor[j] * rule.factor : factor[j] / rule.factor;
      factor[j] = match ? f : factor[j];
    }
  }
  for (uint32_t r : s_->filters) {
    const Rule& rule = impl->rules[r];
    const bool include = rule.kind == Rule::Kind::kInclude;
    const uint64_t* bits = bits_of(r);
    for (size_t j = 0; j < n; ++j) {
      if (bits != nullptr) {
        allowed[j] &= static_cast<uint8_t>(bit_match(bits, j) == include);
      } else if (allowed[j] && NodeMatch(*s_, rule.where, items[j]) != include) {
        allowed[j] = 0;
      }
    }
  }
}

const std::vector<PinRule>& RequestRules::pins() const { return s_->pins; }
const std::vector<CapRule>& RequestRules::caps() const { return s_->caps; }

float RequestRules::ApplyFactor(float score, double factor) {
  return static_cast<float>(score >= 0 ? score * factor : score / factor);
}

// ---------------------------------------------------------------- Rerank

namespace {

// Set of item indices for deduplicating a candidate pool: open addressing
// over a power-of-two table at most half full, one allocation per request.
class ItemSet {
 public:
  explicit ItemSet(size_t n) : bits_(std::bit_width(2 * n + 1)), slots_(size_t{1} << bits_, -1) {}
  // Adds `item` (>= 0); false if it was there already.
  bool Insert(int32_t item) {
    const size_t mask = slots_.size() - 1;
    // Fibonacci hashing: the top bits of the product mix all bits of the item.
    size_t h = (static_cast<uint64_t>(item) * 0x9E3779B97F4A7C15ull) >> (64 - bits_);
    for (;; h = (h + 1) & mask) {
      if (slots_[h] == item) return false;
      if (slots_[h] < 0) {
        slots_[h] = item;
        return true;
      }
    }
  }

 private:
  int bits_;
  std::vector<int32_t> slots_;
};

}  // namespace

Result<std::vector<RankedItem>> Rerank(std::span<const Candidate> candidates,
                                       const RequestRules& rules, const RerankOptions& options,
                                       const Bitmap* allowed) {
  const int k = options.k;
  if (k < 0) return Status::InvalidArgument("k must be >= 0, got " + std::to_string(k));
  auto is_allowed = [&](int32_t item) {
    return item >= 0 && (allowed == nullptr || allowed->contains(static_cast<uint32_t>(item))) &&
           rules.Allowed(item);
  };
  CapTracker tracker(rules.caps());
  // Pins first: they claim their positions and count toward the caps.
  std::vector<PinnedItem> pins;
  std::vector<int> pin_lines;  // parallel to pins
  std::vector<char> position_taken(static_cast<size_t>(k), 0);
  auto pin_of = [&](int32_t item) -> int {
    for (size_t p = 0; p < pins.size(); ++p) {
      if (pins[p].item == item) return static_cast<int>(p);
    }
    return -1;
  };
  for (const PinRule& p : rules.pins()) {
    if (p.position >= k || position_taken[p.position] || pin_of(p.item) >= 0 ||
        !is_allowed(p.item) || !tracker.CanAdd(p.item)) {
      continue;
    }
    tracker.Add(p.item);
    position_taken[p.position] = 1;
    pins.push_back(PinnedItem{p.item, p.position});
    pin_lines.push_back(p.line);
  }
  // The pool: allowed, unpinned, first occurrence, boosted scores. Rules are
  // evaluated for the whole batch (Evaluate); the rule lines of a boost are
  // looked up again only for the items returned.
  const size_t n = candidates.size();
  std::vector<int32_t> items(n);
  for (size_t j = 0; j < n; ++j) items[j] = candidates[j].item;
  std::vector<uint8_t> rules_allow(n);
  std::vector<double> factor(n);
  rules.Evaluate(items, rules_allow, factor);
  std::vector<Candidate> pool;
  pool.reserve(n);
  struct PinnedScore {
    float score = 0;
    bool in_pool = false;
  };
  std::vector<PinnedScore> pinned_scores(pins.size());
  ItemSet seen(n);
  for (size_t j = 0; j < n; ++j) {
    const Candidate& c = candidates[j];
    // A repeat of a dropped item is dropped too, so testing the filters
    // before the repeat check keeps the first occurrence as documented.
    if (c.item < 0 || !rules_allow[j] ||
        (allowed != nullptr && !allowed->contains(static_cast<uint32_t>(c.item))) ||
        !seen.Insert(c.item)) {
      continue;
    }
    Candidate b = c;
    b.score = RequestRules::ApplyFactor(c.score, factor[j]);
    if (const int p = pins.empty() ? -1 : pin_of(c.item); p >= 0) {
      pinned_scores[p] = {b.score, true};
      continue;
    }
    pool.push_back(b);
  }
  const int rest = k - static_cast<int>(pins.size());
  Result<std::vector<int>> sel = std::vector<int>{};
  switch (options.diversity) {
    case Diversity::kNone:
      sel = SelectTopK(pool, rest, &tracker);
      break;
    case Diversity::kMMR:
      sel = SelectMMR(pool, options.dim, rest, options.lambda, &tracker);
      break;
    case Diversity::kDPP:
      sel = SelectDPP(pool, options.dim, rest, options.theta, &tracker);
      break;
  }
  if (!sel.ok()) return sel.status();
  std::vector<int32_t> ranked;
  ranked.reserve(sel->size());
  for (int i : *sel) ranked.push_back(pool[i].item);
  std::vector<RankedItem> out;
  out.reserve(ranked.size() + pins.size());
  size_t next = 0;  // ApplyPins keeps the order of `ranked`
  // Without pins ApplyPins would return `ranked` (no repeats, at most k).
  for (int32_t item : pins.empty() ? ranked : ApplyPins(ranked, pins, k)) {
    RankedItem r;
    r.item = item;
    if (const int p = pin_of(item); p >= 0) {
      r.pinned = true;
      if (pinned_scores[p].in_pool) {
        r.score = pinned_scores[p].score;
        rules.BoostFactor(item, &r.rule_lines);
      }
      r.rule_lines.push_back(pin_lines[p]);
    } else {
      while (ranked[next] != item) ++next;
      r.score = pool[(*sel)[next]].score;
      rules.BoostFactor(item, &r.rule_lines);
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace vitrine
