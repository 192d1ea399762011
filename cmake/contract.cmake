# Generates rapsam_contract.hpp from rapsam_edge/contract/contract.json (the one home of the
# defaults and names Python and C++ share), and reads the list of shipped bundles from it.
# Plain CMake (string(JSON), 3.19+): the C++ builds need no Python.
#
#   rapsam_generate_contract(<json> <out_header>)   sets RAPSAM_SHIPPED_BUNDLES, RAPSAM_SAMPLES_DIR
#   rapsam_embed_manifest_schema(<schema> <contract> <out_header>)   the C++ runtime's schema
#   rapsam_install_bundle(<bundle_dir> <destination>)   a bundle without its training weights

function(_rapsam_json out json)
  string(JSON _value GET "${json}" ${ARGN})
  set(${out} "${_value}" PARENT_SCOPE)
endfunction()

function(rapsam_generate_contract json_file out_header)
  file(READ "${json_file}" _json)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${json_file}")
  set(_h "// Generated from rapsam_edge/contract/contract.json by cmake/contract.cmake: do not edit.\n")
  string(APPEND _h "// The defaults and names the C++ core and runtime share with the Python SDK.\n")
  string(APPEND _h "#pragma once\n\nnamespace rapsam::contract {\n\n")
  # section:key:C++ name of every real-valued constant
  foreach(_entry postprocess:score_threshold:kScoreThreshold
                 postprocess:overlap_threshold:kOverlapThreshold
                 postprocess:prompt_threshold:kPromptThreshold
                 postprocess:stability_offset:kStabilityOffset
                 postprocess:point_box_half:kPointBoxHalf
                 postprocess:saturated_logit:kSaturatedLogit
                 tracker:match_threshold:kMatchThreshold
                 tracker:class_change_penalty:kClassChangePenalty
                 tracker:birth_score:kBirthScore tracker:momentum:kMomentum)
    string(REPLACE ":" ";" _parts "${_entry}")
    list(GET _parts 0 _section)
    list(GET _parts 1 _key)
    list(GET _parts 2 _name)
    _rapsam_json(_v "${_json}" ${_section} ${_key})
    string(APPEND _h "constexpr double ${_name} = ${_v};\n")
  endforeach()
  _rapsam_json(_v "${_json}" tracker max_missed)
  string(APPEND _h "constexpr int kMaxMissed = ${_v};\n")
  _rapsam_json(_v "${_json}" threads max)
  string(APPEND _h "\n/// Largest accepted thread count (set_num_threads, the threads variable).\n")
  string(APPEND _h "constexpr int kMaxThreads = ${_v};\n")
  _rapsam_json(_v "${_json}" prompts max)
  string(APPEND _h "/// Most prompts one prompt() call accepts (default and bound of max_prompts).\n")
  string(APPEND _h "constexpr int kMaxPrompts = ${_v};\n")
  _rapsam_json(_v "${_json}" frames max_pixels)
  string(APPEND _h "/// Largest frame either runtime accepts (pixels; result maps are at the frame's size).\n")
  string(APPEND _h "constexpr long long kMaxFramePixels = ${_v};\n")
  _rapsam_json(_v "${_json}" manifest max_manifest_bytes)
  string(APPEND _h "/// Largest manifest.json either runtime reads (bytes).\n")
  string(APPEND _h "constexpr long long kMaxManifestBytes = ${_v};\n")
  _rapsam_json(_v "${_json}" manifest max_json_depth)
  string(APPEND _h "/// Deepest JSON nesting (objects and arrays) of a manifest.\n")
  string(APPEND _h "constexpr int kMaxJsonDepth = ${_v};\n")
  _rapsam_json(_v "${_json}" env threads)
  string(APPEND _h "/// Environment variable holding the default thread count.\n")
  string(APPEND _h "constexpr const char* kThreadsEnvVar = \"${_v}\";\n")
  _rapsam_json(_v "${_json}" bundles partial_mark)
  string(APPEND _h "/// Part of the name of a writer's staging folder (never a bundle).\n")
  string(APPEND _h "constexpr const char* kPartialBundleMark = \"${_v}\";\n")
  _rapsam_json(_v "${_json}" env ops)
  string(APPEND _h "constexpr const char* kOpsEnvVar = \"${_v}\";\n")

  # graphs: contract::graphs::<graph>::name, in_<role> / out_<role> = position in role order
  string(APPEND _h "\n/// The deploy graphs: their names and each tensor's position in role order.\n")
  string(APPEND _h "namespace graphs {\n")
  string(JSON _n_graphs LENGTH "${_json}" graphs)
  math(EXPR _last "${_n_graphs} - 1")
  set(_names "")
  foreach(_g RANGE ${_last})
    string(JSON _graph MEMBER "${_json}" graphs ${_g})
    list(APPEND _names "\"${_graph}\"")
    string(APPEND _h "namespace ${_graph} {\nconstexpr const char* name = \"${_graph}\";\n")
    foreach(_dir inputs outputs)
      string(SUBSTRING "${_dir}" 0 2 _p)
      if(_p STREQUAL "ou")
        set(_p "out")
      endif()
      string(JSON _n LENGTH "${_json}" graphs ${_graph} ${_dir})
      math(EXPR _tl "${_n} - 1")
      foreach(_t RANGE ${_tl})
        _rapsam_json(_role "${_json}" graphs ${_graph} ${_dir} ${_t} role)
        string(APPEND _h "constexpr int ${_p}_${_role} = ${_t};\n")
      endforeach()
      string(APPEND _h "constexpr int n_${_dir} = ${_n};\n")
    endforeach()
    string(APPEND _h "}  // namespace ${_graph}\n")
  endforeach()
  list(JOIN _names ", " _names)
  string(APPEND _h "constexpr const char* kNames[] = {${_names}};\n")
  string(APPEND _h "}  // namespace graphs\n\n}  // namespace rapsam::contract\n")
  file(CONFIGURE OUTPUT "${out_header}" CONTENT "${_h}" @ONLY)

  string(JSON _n LENGTH "${_json}" bundles shipped)
  math(EXPR _last "${_n} - 1")
  set(_bundles "")
  foreach(_i RANGE ${_last})
    _rapsam_json(_b "${_json}" bundles shipped ${_i})
    list(APPEND _bundles "${_b}")
  endforeach()
  set(RAPSAM_SHIPPED_BUNDLES "${_bundles}" PARENT_SCOPE)
  _rapsam_json(_clip "${_json}" bundles sample_clip)
  get_filename_component(_samples "${_clip}" DIRECTORY)
  set(RAPSAM_SAMPLES_DIR "${_samples}" PARENT_SCOPE)
endfunction()

# Embeds the manifest schema and contract.json, as text, into <out_header> for the C++
# runtime's manifest validation (csrc/runtime/manifest_check.cpp parses them once): the same
# files the Python runtime reads, so neither side has a copy of the rules.
#   rapsam_embed_manifest_schema(<schema_json> <contract_json> <out_header>)
function(rapsam_embed_manifest_schema schema_file contract_file out_header)
  set(_h "// Generated by cmake/contract.cmake from rapsam_edge/contract/manifest.schema.json and\n")
  string(APPEND _h "// contract.json: do not edit.\n#pragma once\n\nnamespace rapsam::contract {\n\n")
  foreach(_pair "kManifestSchemaJson;${schema_file}" "kContractJson;${contract_file}")
    list(GET _pair 0 _name)
    list(GET _pair 1 _file)
    file(READ "${_file}" _text)
    set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_file}")
    string(FIND "${_text}" ")rapsam_json\"" _clash)
    if(NOT _clash EQUAL -1)
      message(FATAL_ERROR "${_file} contains the raw-string delimiter )rapsam_json\"")
    endif()
    string(APPEND _h "inline constexpr const char ${_name}[] = R\"rapsam_json(${_text})rapsam_json\";\n\n")
  endforeach()
  string(APPEND _h "}  // namespace rapsam::contract\n")
  file(CONFIGURE OUTPUT "${out_header}" CONTENT "${_h}" @ONLY)
endfunction()

# Installs one bundle for the torch-free wheel: every file but the torch training weights
# (manifest "weights": model.safetensors + config.json, usable only by the torch backend).
# The installed manifest says so itself ("weights": null, those files unlisted), so the
# checksum verification on load (every listed file present, every file listed) holds.
function(rapsam_install_bundle bundle_dir destination)
  get_filename_component(_name "${bundle_dir}" NAME)
  set(_manifest "${bundle_dir}/manifest.json")
  file(READ "${_manifest}" _m)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${_manifest}")
  string(JSON _wtype TYPE "${_m}" weights)
  set(_exclude "")
  if(_wtype STREQUAL "OBJECT")
    foreach(_key file config)
      string(JSON _f GET "${_m}" weights ${_key})
      list(APPEND _exclude PATTERN "${_f}" EXCLUDE)
      string(JSON _m REMOVE "${_m}" files "${_f}")
    endforeach()
    string(JSON _m SET "${_m}" weights null)
    set(_out "${CMAKE_CURRENT_BINARY_DIR}/runtime_bundles/${_name}/manifest.json")
    file(WRITE "${_out}" "${_m}\n")
    install(FILES "${_out}" DESTINATION "${destination}/${_name}")
    list(APPEND _exclude PATTERN manifest.json EXCLUDE)
  endif()
  install(DIRECTORY "${bundle_dir}" DESTINATION "${destination}" ${_exclude})
endfunction()
