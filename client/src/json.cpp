// The structs in the extension's JSON form, both ways, and value equality.
// Reading is strict (wrong types and unknown keys throw
// std::invalid_argument) because the server rejects the same input anyway
// and a local error names the field sooner.
#include "internal.hpp"

#include <cmath>
#include <stdexcept>
#include <string_view>

namespace coherence {

using nlohmann::json;

namespace {

// Throws the library's error type for malformed JSON.
[[noreturn]] void bad(const std::string &what) { throw std::invalid_argument("coherence: " + what); }

// The string at j, which must be a JSON string.
std::string string_of(const json &j, const std::string &what) {
  if (!j.is_string()) bad(what + " must be a string");
  return j.get<std::string>();
}

// The member `key` of object j, which must exist.
const json &member(const json &j, const char *key, std::string_view what) {
  const auto it = j.find(key);
  if (it == j.end()) bad(std::string(what) + " needs \"" + key + "\"");
  return *it;
}

// Rejects keys of j that are not listed, as the server does for events.
void only_keys(const json &j, std::initializer_list<const char *> keys, const std::string &what) {
  if (!j.is_object()) bad(what + " must be an object");
  for (const auto &item : j.items()) {
    bool known = false;
    for (const char *k : keys) known = known || item.key() == k;
    if (!known) bad(what + " has unknown key \"" + item.key() + "\"");
  }
}

// A path is a key or an array of keys.
Path path_of(const json &j) {
  if (j.is_string()) return {j.get<std::string>()};
  if (!j.is_array()) bad("a patch path must be a string or an array of strings");
  Path path;
  for (const auto &key : j) path.push_back(string_of(key, "a patch path key"));
  return path;
}

// Identities in an array, e.g. the triggers of an action.
std::vector<Identity> identities_of(const json &j, const std::string &what) {
  if (!j.is_array()) bad(what + " must be an array");
  return j.get<std::vector<Identity>>();
}

// The action or effect of an event object, whichever it has.
std::variant<Action, Effect> body_of(const json &j) {
  const bool action = j.contains("action"), effect = j.contains("effect");
  if (action == effect) bad("an event needs exactly one of \"action\" and \"effect\"");
  if (action) return j["action"].get<Action>();
  return j["effect"].get<Effect>();
}

// Writes the action or effect of an event, plus an action's triggers.
void put_body(json &j, const std::variant<Action, Effect> &body, const std::vector<Identity> &triggers) {
  if (const auto *a = std::get_if<Action>(&body)) {
    j["action"] = *a;
    j["triggers"] = triggers;
  } else {
    j["effect"] = std::get<Effect>(body);
  }
}

// The seq_no of an output event.
std::int64_t seq_no_of(const json &j, const char *key, const std::string &what) {
  const json &v = member(j, key, what);
  if (!v.is_number_integer()) bad(what + "." + key + " must be an integer");
  return v.get<std::int64_t>();
}

// An event's optional id, a UUID as text (the server checks its form).
std::optional<std::string> id_of(const json &j, const std::string &what) {
  const auto it = j.find("id");
  if (it == j.end()) return std::nullopt;
  return string_of(*it, what + "'s id");
}

// The text the server stores for a numeric id: the integer's digits. A
// number the client cannot know exactly (a fraction, or a float beyond
// 2^53, where nlohmann has already rounded it) is refused rather than
// guessed, so the client never names an aggregate the server would not.
std::string id_of_number(const json &j) {
  if (j.is_number_integer()) return j.is_number_unsigned() ? std::to_string(j.get<std::uint64_t>())
                                                           : std::to_string(j.get<std::int64_t>());
  const double value = j.get<double>();
  if (std::trunc(value) != value) bad("an identity's numeric id must be an integer, got " + j.dump());
  if (std::fabs(value) >= 9007199254740992.0)
    bad("an identity's numeric id " + j.dump() + " is beyond 2^53 and may have been rounded; give it as a string");
  return std::to_string(static_cast<std::int64_t>(value));
}

// The events array of a rebase answer.
std::vector<Event> events_of(const json &j) {
  const json &events = member(j, "events", "a rebase answer");
  if (!events.is_array()) bad("a rebase answer's events must be an array");
  return events.get<std::vector<Event>>();
}

}  // namespace

// Field-by-field equality; patch values compare as JSON values.
bool operator==(const Identity &a, const Identity &b) { return a.kind == b.kind && a.id == b.id; }
bool operator==(const Patch &a, const Patch &b) { return a.assoc == b.assoc && a.dissoc == b.dissoc; }
bool operator==(const Action &a, const Action &b) {
  return a.reason == b.reason && a.actor == b.actor && a.aggregate == b.aggregate && a.patch == b.patch;
}
bool operator==(const Effect &a, const Effect &b) { return a.reason == b.reason && a.trigger == b.trigger; }
bool operator==(const NewEvent &a, const NewEvent &b) {
  return a.source == b.source && a.body == b.body && a.triggers == b.triggers && a.timestamp == b.timestamp &&
         a.id == b.id;
}
bool operator==(const Event &a, const Event &b) {
  return a.seq_no == b.seq_no && a.timestamp == b.timestamp && a.source == b.source && a.body == b.body &&
         a.triggers == b.triggers && a.replayed == b.replayed && a.id == b.id;
}
bool operator==(const Ok &a, const Ok &b) { return a.events == b.events && a.duplicate == b.duplicate; }
bool operator==(const Conflict &a, const Conflict &b) {
  return a.events == b.events && a.ours == b.ours && a.theirs == b.theirs;
}
bool operator==(const InvalidSeqNo &a, const InvalidSeqNo &b) { return a.next_seq_no == b.next_seq_no; }

// C++17 does not derive != from ==.
bool operator!=(const Identity &a, const Identity &b) { return !(a == b); }
bool operator!=(const Patch &a, const Patch &b) { return !(a == b); }
bool operator!=(const Action &a, const Action &b) { return !(a == b); }
bool operator!=(const Effect &a, const Effect &b) { return !(a == b); }
bool operator!=(const NewEvent &a, const NewEvent &b) { return !(a == b); }
bool operator!=(const Event &a, const Event &b) { return !(a == b); }
bool operator!=(const Ok &a, const Ok &b) { return !(a == b); }
bool operator!=(const Conflict &a, const Conflict &b) { return !(a == b); }
bool operator!=(const InvalidSeqNo &a, const InvalidSeqNo &b) { return !(a == b); }

// One assoc per top-level key of an object, e.g. a struct through its
// adl_serializer.
Patch Patch::assoc_object(const json &object) {
  if (!object.is_object()) bad("Patch::assoc_object needs a JSON object, got " + std::string(object.type_name()));
  Patch patch;
  for (const auto &item : object.items()) patch.assoc.emplace_back(Path{item.key()}, item.value());
  return patch;
}

// ["kind", "id"].
void to_json(json &j, const Identity &v) { j = json::array({v.kind, v.id}); }

// ["kind", "id"], accepting a number as id like the server does.
void from_json(const json &j, Identity &v) {
  if (!j.is_array() || j.size() != 2) bad("an identity must be a [kind, id] array");
  v.kind = string_of(j[0], "an identity's kind");
  // The server stores a numeric id as its integer text: ["receipt", 1e0] is receipt "1".
  v.id = j[1].is_number() ? id_of_number(j[1]) : string_of(j[1], "an identity's id");
}

// Always the array-of-pairs form with array paths: unambiguous for nested keys.
void to_json(json &j, const Patch &v) {
  j = json::object();
  if (!v.assoc.empty()) {
    json assoc = json::array();
    for (const auto &[path, value] : v.assoc) assoc.push_back(json::array({path, value}));
    j["assoc"] = std::move(assoc);
  }
  if (!v.dissoc.empty()) j["dissoc"] = v.dissoc;
}

// Both forms the server stores as given: {"k": v} or [[path, v], ...].
void from_json(const json &j, Patch &v) {
  only_keys(j, {"assoc", "dissoc"}, "a patch");
  v = Patch{};
  if (const auto it = j.find("assoc"); it != j.end()) {
    if (it->is_object()) {
      for (const auto &item : it->items()) v.assoc.emplace_back(Path{item.key()}, item.value());
    } else if (it->is_array()) {
      for (const auto &pair : *it) {
        if (!pair.is_array() || pair.size() != 2) bad("a patch's assoc items must be [path, value] pairs");
        v.assoc.emplace_back(path_of(pair[0]), pair[1]);
      }
    } else {
      bad("a patch's assoc must be an object or an array");
    }
  }
  if (const auto it = j.find("dissoc"); it != j.end()) {
    if (!it->is_array()) bad("a patch's dissoc must be an array");
    for (const auto &path : *it) v.dissoc.push_back(path_of(path));
  }
}

// {"reason", "actor", "aggregate", "patch"}.
void to_json(json &j, const Action &v) {
  j = json{{"reason", v.reason}, {"actor", v.actor}, {"aggregate", v.aggregate}, {"patch", v.patch}};
}

// {"reason", "actor", "aggregate", "patch"}, nothing else.
void from_json(const json &j, Action &v) {
  only_keys(j, {"reason", "actor", "aggregate", "patch"}, "an action");
  v.reason = string_of(member(j, "reason", "an action"), "an action's reason");
  v.actor = member(j, "actor", "an action").get<Identity>();
  v.aggregate = member(j, "aggregate", "an action").get<Identity>();
  v.patch = member(j, "patch", "an action").get<Patch>();
}

// {"reason", "trigger"}.
void to_json(json &j, const Effect &v) { j = json{{"reason", v.reason}, {"trigger", v.trigger}}; }

// {"reason", "trigger"}, nothing else.
void from_json(const json &j, Effect &v) {
  only_keys(j, {"reason", "trigger"}, "an effect");
  v.reason = string_of(member(j, "reason", "an effect"), "an effect's reason");
  v.trigger = member(j, "trigger", "an effect").get<Identity>();
}

// The input form of coherence_rebase.
void to_json(json &j, const NewEvent &v) {
  j = json{{"source", v.source}};
  if (v.id) j["id"] = *v.id;
  if (v.timestamp) j["timestamp"] = internal::format_timestamp(*v.timestamp);
  put_body(j, v.body, v.triggers);
  // An effect's empty trigger list is left out; a non-empty one is sent so
  // the server reports it too.
  if (std::holds_alternative<Effect>(v.body) && !v.triggers.empty()) j["triggers"] = v.triggers;
}

// The input form; a timestamp needs a UTC offset to mean one instant.
void from_json(const json &j, NewEvent &v) {
  only_keys(j, {"id", "timestamp", "source", "action", "effect", "triggers"}, "an event");
  v.id = id_of(j, "an event");
  v.source = string_of(member(j, "source", "an event"), "an event's source");
  v.body = body_of(j);
  v.triggers = j.contains("triggers") ? identities_of(j["triggers"], "an event's triggers")
                                      : std::vector<Identity>{};
  v.timestamp.reset();
  if (j.contains("timestamp")) v.timestamp = internal::parse_timestamp(string_of(j["timestamp"], "a timestamp"));
}

// The output form, timestamps in UTC.
void to_json(json &j, const Event &v) {
  j = json{{"seq_no", v.seq_no}, {"timestamp", internal::format_timestamp(v.timestamp)}, {"source", v.source}};
  if (v.id) j["id"] = *v.id;
  put_body(j, v.body, v.triggers);
  // Only actions are stream rows, so only they can be replays.
  if (std::holds_alternative<Action>(v.body)) j["replayed"] = v.replayed;
}

// The output form of the server (coherence_event, rebase answers) or of to_json.
void from_json(const json &j, Event &v) {
  only_keys(j, {"seq_no", "id", "timestamp", "source", "action", "effect", "triggers", "replayed"}, "an event");
  v.seq_no = seq_no_of(j, "seq_no", "an event");
  v.id = id_of(j, "an event");
  v.timestamp = internal::parse_timestamp(string_of(member(j, "timestamp", "an event"), "a timestamp"));
  v.source = string_of(member(j, "source", "an event"), "an event's source");
  v.body = body_of(j);
  v.triggers = j.contains("triggers") ? identities_of(j["triggers"], "an event's triggers")
                                      : std::vector<Identity>{};
  v.replayed = false;
  if (const auto it = j.find("replayed"); it != j.end()) {
    if (!it->is_boolean()) bad("an event's replayed must be true or false");
    v.replayed = it->get<bool>();
  }
}

// {"result": "ok", "events": [...]}, plus "duplicate": true for a retry.
void to_json(json &j, const Ok &v) {
  j = json{{"result", "ok"}, {"events", v.events}};
  if (v.duplicate) j["duplicate"] = true;
}

// The events of an "ok" answer, and whether they were stored before.
void from_json(const json &j, Ok &v) {
  v.events = events_of(j);
  v.duplicate = false;
  if (const auto it = j.find("duplicate"); it != j.end()) {
    if (!it->is_boolean()) bad("a rebase answer's duplicate must be true or false");
    v.duplicate = it->get<bool>();
  }
}

// {"result": "conflict", "events", "conflict": {"ours", "theirs"}}.
void to_json(json &j, const Conflict &v) {
  j = json{{"result", "conflict"}, {"events", v.events}, {"conflict", {{"ours", v.ours}, {"theirs", v.theirs}}}};
}

// The parts of a "conflict" answer.
void from_json(const json &j, Conflict &v) {
  v.events = events_of(j);
  const json &conflict = member(j, "conflict", "a conflict answer");
  v.ours = member(conflict, "ours", "a conflict").get<Event>();
  v.theirs = member(conflict, "theirs", "a conflict").get<Event>();
}

// {"result": "invalid-seq-no", "next_seq_no": N}.
void to_json(json &j, const InvalidSeqNo &v) { j = json{{"result", "invalid-seq-no"}, {"next_seq_no", v.next_seq_no}}; }

// The next_seq_no of an "invalid-seq-no" answer.
void from_json(const json &j, InvalidSeqNo &v) { v.next_seq_no = seq_no_of(j, "next_seq_no", "an invalid-seq-no answer"); }

// Whichever answer it holds.
void to_json(json &j, const RebaseResult &v) {
  std::visit([&j](const auto &answer) { j = answer; }, v);
}

// Dispatches on "result".
void from_json(const json &j, RebaseResult &v) {
  if (!j.is_object()) bad("a rebase answer must be an object");
  const std::string result = string_of(member(j, "result", "a rebase answer"), "a rebase answer's result");
  if (result == "ok")
    v = j.get<Ok>();
  else if (result == "conflict")
    v = j.get<Conflict>();
  else if (result == "invalid-seq-no")
    v = j.get<InvalidSeqNo>();
  else
    bad("unknown rebase result \"" + result + "\"");
}

}  // namespace coherence
