// A small read model for the projector tests, shared with the crash-test
// child process: one row per aggregate with its folded top-level state and
// the number of actions applied to it since it was last reset, so applying
// a row twice, or missing one, shows in the table.
#pragma once

#include <coherence/coherence.hpp>

#include <string>

namespace coherence::test {

// CREATE TABLE `table` (kind, id, applied, state), keyed by (kind, id).
void create_model(const std::string &conninfo, const std::string &table);

// Upserts the event's aggregate: applied + 1, state merged with the patch's
// top-level assoc keys.
Projector::Handler model_handler(const std::string &table);

// Deletes the aggregate's row.
Projector::Reset model_reset(const std::string &table);

// The whole table as text, ordered by kind and id, for comparisons.
std::string dump_model(const std::string &conninfo, const std::string &table);

}  // namespace coherence::test
