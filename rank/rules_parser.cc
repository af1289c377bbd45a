// The rules parser: text -> ParsedRules, by recursive descent over each
// line's tokens (see rules_parser.h for the limits it enforces).
#include "rank/rules_parser.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <utility>
#include <vector>

#include "rank/rules.h"
#include "rank/rules_lexer.h"

namespace vitrine::rules_internal {
namespace {

std::string Upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

bool IsColumnToken(const Token& t) {
  return t.kind == Token::Kind::kQuotedIdent || (t.kind == Token::Kind::kIdent && !IsKeyword(t));
}

// Parses the tokens of one line into a rule, appending its nodes to
// `out->nodes`.
class Parser {
 public:
  Parser(ParsedRules* out, int line, std::vector<Token> tokens)
      : out_(out), line_(line), t_(std::move(tokens)) {}

  Result<Rule> ParseRule() {
    Rule r;
    r.line = line_;
    if (IsKw("WHEN")) {
      Next();
      VITRINE_ASSIGN_OR_RETURN(r.when, ParseCondition(true));
    }
    const Token action = Cur();
    if (IsKw("INCLUDE") || IsKw("EXCLUDE")) {
      r.kind = IsKw("INCLUDE") ? Rule::Kind::kInclude : Rule::Kind::kExclude;
      Next();
      if (!IsKw("WHERE")) return Error(Cur().col, "expected WHERE after " + Upper(action.text));
      Next();
      r.where_begin = static_cast<int>(out_->nodes.size());
      VITRINE_ASSIGN_OR_RETURN(r.where, ParseCondition(false));
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
      r.where_begin = static_cast<int>(out_->nodes.size());
      VITRINE_ASSIGN_OR_RETURN(r.where, ParseCondition(false));
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
    // What the predicate depends on: a pass over its nodes, no recursion.
    for (int id = r.where_begin; r.where >= 0 && id <= r.where; ++id) {
      for (const Value& v : out_->nodes[id].values) {
        if (v.kind == Value::Kind::kCurrentItem) r.uses_current_item = true;
        if (v.kind == Value::Kind::kCurrentItem || v.kind == Value::Kind::kParam ||
            v.kind == Value::Kind::kContext) {
          r.dynamic = true;
          r.where_dynamic = true;
        }
      }
    }
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
  Status Error(int col, const std::string& msg) const { return out_->Error(line_, col, msg); }

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
    out_->nodes.push_back(std::move(n));
    return static_cast<int>(out_->nodes.size()) - 1;
  }

  // A WHEN (`when`) or WHERE condition.
  Result<int> ParseCondition(bool when) {
    depth_ = 0;
    return ParseOr(when);
  }

  // term { OR term }, and term := factor { AND factor }: one n-ary node per
  // chain, built in a loop.
  Result<int> ParseOr(bool when) { return ParseChain(when, "OR", Node::Kind::kOr); }
  Result<int> ParseAnd(bool when) { return ParseChain(when, "AND", Node::Kind::kAnd); }
  Result<int> ParseChain(bool when, const char* kw, Node::Kind kind) {
    std::vector<int> kids;
    while (true) {
      Result<int> kid = kind == Node::Kind::kOr ? ParseAnd(when) : ParseFactor(when);
      if (!kid.ok()) return kid.status();
      kids.push_back(*kid);
      if (!IsKw(kw)) break;
      Next();
    }
    if (kids.size() == 1) return kids[0];
    Node n;
    n.kind = kind;
    n.kids = std::move(kids);
    return Add(std::move(n));
  }

  // NOT factor | "(" predicate ")" | comparison. NOT and "(" nest; each one
  // is a level of recursion here and in the evaluators, hence the limit.
  Result<int> ParseFactor(bool when) {
    const bool is_not = IsKw("NOT");
    if (!is_not && !IsPunct("(")) return ParseComparison(when);
    if (depth_ == RuleSet::kMaxDepth) {
      return Error(Cur().col, "expression nests deeper than " + std::to_string(RuleSet::kMaxDepth) +
                                  " levels");
    }
    ++depth_;
    Next();
    Result<int> inner = is_not ? ParseFactor(when) : ParseOr(when);
    --depth_;
    if (!inner.ok()) return inner.status();
    if (is_not) {
      Node n;
      n.kind = Node::Kind::kNot;
      n.kids = {*inner};
      return Add(std::move(n));
    }
    if (!IsPunct(")")) return Error(Cur().col, "expected ')'");
    Next();
    return *inner;
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

  ParsedRules* out_;
  int line_;
  std::vector<Token> t_;
  size_t pos_ = 0;
  int depth_ = 0;  // NOTs and parentheses open around the current token
};

}  // namespace

Result<ParsedRules> ParseRuleText(std::string_view text, std::string source) {
  ParsedRules out;
  out.source = std::move(source);
  if (text.size() > RuleSet::kMaxTextBytes) {
    // Point at the first byte over the limit.
    const std::string_view head = text.substr(0, RuleSet::kMaxTextBytes);
    const size_t nl = head.rfind('\n');
    const auto line = 1 + static_cast<int>(std::count(head.begin(), head.end(), '\n'));
    const auto col =
        static_cast<int>(nl == std::string_view::npos ? head.size() + 1 : head.size() - nl);
    return out.Error(
        line, col, "rule text is longer than " + std::to_string(RuleSet::kMaxTextBytes) + " bytes");
  }
  int line_no = 0;
  size_t b = 0;
  while (b <= text.size()) {
    size_t e = text.find('\n', b);
    if (e == std::string_view::npos) e = text.size();
    ++line_no;
    VITRINE_ASSIGN_OR_RETURN(
        std::vector<Token> tokens,
        Lex(text.substr(b, e - b), out.source + ":" + std::to_string(line_no) + ":"));
    if (tokens.size() > 1) {  // not blank / comment only
      if (out.rules.size() == static_cast<size_t>(RuleSet::kMaxRules)) {
        return out.Error(line_no, tokens[0].col,
                         "more than " + std::to_string(RuleSet::kMaxRules) + " rules");
      }
      Parser parser(&out, line_no, std::move(tokens));
      VITRINE_ASSIGN_OR_RETURN(Rule rule, parser.ParseRule());
      out.rules.push_back(std::move(rule));
    }
    b = e + 1;
  }
  return out;
}

}  // namespace vitrine::rules_internal
