// Manifest validation for the C++ runtime, twin of the Python runtime's
// (rapsam_edge/contract/schema.py + _manifest_parse.py + bundle.read_manifest): the same
// JSON reading rules, the same schema (manifest.schema.json, embedded at configure time by
// cmake/contract.cmake) walked in the same order (object keys sorted), the same rules between
// fields, so a
// manifest one runtime refuses the other refuses with the same field named and the same
// wording ("manifest.input.pad_value: 300 > 255").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>

namespace rapsam::manifest {

// std::map storage: keys are visited in sorted (UTF-8 byte) order here and in Python, never
// in document order (nlohmann's ordered_json inserts in linear time: a 16 MiB object of
// short keys would take hours to parse).
using Json = nlohmann::json;

/// Parses manifest text as bundle.read_manifest does: no UTF-8 byte order mark, no duplicate
/// key (the first one named), nesting of at most contract::kMaxJsonDepth. Throws BundleError
/// "<where>: not valid JSON (...)" / "<where>: duplicate key '...'".
Json parse_json(const std::string& text, const std::string& where);

/// The manifest schema (parsed once from the embedded manifest.schema.json).
const Json& schema();

/// contract.json's "graphs" (each graph's tensors in role order: role, dtype, shape).
const Json& contract_graphs();

/// The first error of `value` against `schema` (schema.py first_error): (field path,
/// message), or nullopt when valid. Throws std::logic_error on a keyword it does not know.
std::optional<std::pair<std::string, std::string>> first_error(const Json& value,
                                                               const Json& schema,
                                                               const std::string& path);

/// The rules between fields (_manifest_parse.py, same order and wording) on a schema-valid
/// manifest. Throws BundleError "<field path>: <message>".
void check_cross_fields(const Json& m);

/// Full validation: schema, then the rules between fields. Throws BundleError.
void validate(const Json& m);

/// A value as messages quote it (schema.py render).
std::string render(const Json& v);

}  // namespace rapsam::manifest
