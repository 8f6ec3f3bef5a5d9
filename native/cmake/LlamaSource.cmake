# Locates the pinned llama.cpp source tree and sets LLAMA_CPP_DIR.
#
# The source is the llama.cpp release of 2026-09-28 that the npm package node-llama-cpp@3.22.1 ships as a git
# bundle (llama/gitRelease.bundle). We fetch the package with npm, check the bundle's sha256, clone it into a
# cache outside the repository and apply native/patches/*.patch there, once. The cache key is the bundle hash plus
# the hash of the patches, so editing a patch yields a fresh tree and never a half-patched one.
#
# LLAMA_CPP_DIR (CMake variable or environment variable) overrides all of this: that tree is used as it is,
# and is expected to carry our patches already (native/patches/apply.sh applies them to any tree).

set(STEER_LLAMA_NPM_PACKAGE "node-llama-cpp@3.22.1")
set(STEER_LLAMA_BUNDLE_SHA256 "5f5d1105d5df040738d87b8290e5d17e7362131cdcfdb0831618e0ea528b4a51")

if(NOT LLAMA_CPP_DIR AND DEFINED ENV{LLAMA_CPP_DIR})
  set(LLAMA_CPP_DIR "$ENV{LLAMA_CPP_DIR}")
endif()
if(LLAMA_CPP_DIR)
  if(NOT EXISTS "${LLAMA_CPP_DIR}/include/llama.h")
    message(FATAL_ERROR "LLAMA_CPP_DIR=${LLAMA_CPP_DIR} is not a llama.cpp source tree (no include/llama.h)")
  endif()
  message(STATUS "llama.cpp: using LLAMA_CPP_DIR=${LLAMA_CPP_DIR} as given")
  return()
endif()

if(DEFINED ENV{STEER_CACHE})
  set(_cache "$ENV{STEER_CACHE}")
else()
  set(_cache "$ENV{HOME}/.cache/steer")
endif()

file(GLOB _patches "${CMAKE_CURRENT_LIST_DIR}/../patches/*.patch")
list(SORT _patches)
set(_patch_text "")
foreach(_p IN LISTS _patches)
  # Name and content only: the key must not depend on where the repository is checked out.
  get_filename_component(_name "${_p}" NAME)
  file(READ "${_p}" _t)
  string(APPEND _patch_text "${_name}\n${_t}")
endforeach()
string(SHA256 _patch_hash "${_patch_text}")
string(SUBSTRING "${STEER_LLAMA_BUNDLE_SHA256}" 0 12 _bundle_key)
string(SUBSTRING "${_patch_hash}" 0 8 _patch_key)
set(LLAMA_CPP_DIR "${_cache}/llama.cpp/${_bundle_key}-${_patch_key}")
# Make the patches part of the configure step, so that a changed patch re-runs this script.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_patches})

if(EXISTS "${LLAMA_CPP_DIR}/.steer-ready")
  message(STATUS "llama.cpp: cached tree ${LLAMA_CPP_DIR}")
  return()
endif()

# 1. The bundle, from the npm package (cached).
set(_dl "${_cache}/downloads")
set(_bundle "${_dl}/node-llama-cpp-3.22.1-gitRelease.bundle")
if(EXISTS "${_bundle}")
  file(SHA256 "${_bundle}" _have)
  if(NOT _have STREQUAL STEER_LLAMA_BUNDLE_SHA256)
    file(REMOVE "${_bundle}")
  endif()
endif()
if(NOT EXISTS "${_bundle}")
  find_program(NPM npm REQUIRED)
  set(_tmp "${_dl}/npm-tmp")
  file(REMOVE_RECURSE "${_tmp}")
  file(MAKE_DIRECTORY "${_tmp}")
  message(STATUS "llama.cpp: fetching ${STEER_LLAMA_NPM_PACKAGE} with npm")
  execute_process(COMMAND "${NPM}" pack "${STEER_LLAMA_NPM_PACKAGE}" --silent
                  WORKING_DIRECTORY "${_tmp}" RESULT_VARIABLE _rc OUTPUT_VARIABLE _tgz OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "npm pack ${STEER_LLAMA_NPM_PACKAGE} failed (${_rc}); set LLAMA_CPP_DIR to a llama.cpp tree to build offline")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -E tar xzf "${_tgz}" -- package/llama/gitRelease.bundle
                  WORKING_DIRECTORY "${_tmp}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "could not extract llama/gitRelease.bundle from ${_tgz}")
  endif()
  file(SHA256 "${_tmp}/package/llama/gitRelease.bundle" _have)
  if(NOT _have STREQUAL STEER_LLAMA_BUNDLE_SHA256)
    message(FATAL_ERROR "gitRelease.bundle sha256 is ${_have}, expected ${STEER_LLAMA_BUNDLE_SHA256}")
  endif()
  file(RENAME "${_tmp}/package/llama/gitRelease.bundle" "${_bundle}")
  file(REMOVE_RECURSE "${_tmp}")
endif()

# 2. Clone and patch into a temporary folder, then move it into place: the ready tree appears whole or not at all.
find_package(Git REQUIRED)
set(_work "${LLAMA_CPP_DIR}.tmp")
file(REMOVE_RECURSE "${_work}")
execute_process(COMMAND "${GIT_EXECUTABLE}" -c advice.detachedHead=false clone --quiet "${_bundle}" "${_work}" RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "git clone of ${_bundle} failed")
endif()
foreach(_p IN LISTS _patches)
  message(STATUS "llama.cpp: applying ${_p}")
  execute_process(COMMAND "${GIT_EXECUTABLE}" apply --whitespace=nowarn "${_p}" WORKING_DIRECTORY "${_work}" RESULT_VARIABLE _rc)
  if(NOT _rc EQUAL 0)
    message(FATAL_ERROR "patch ${_p} does not apply to the pinned llama.cpp")
  endif()
endforeach()
file(WRITE "${_work}/.steer-ready" "bundle ${STEER_LLAMA_BUNDLE_SHA256}\npatches ${_patch_hash}\n")
file(REMOVE_RECURSE "${LLAMA_CPP_DIR}")
file(RENAME "${_work}" "${LLAMA_CPP_DIR}")
message(STATUS "llama.cpp: prepared ${LLAMA_CPP_DIR}")
