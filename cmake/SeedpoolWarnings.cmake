# seedpool_set_warnings(target): the project's warning set, an error under SEEDPOOL_WERROR.
function(seedpool_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wconversion
    -Wsign-conversion -Wnon-virtual-dtor -Wold-style-cast -Woverloaded-virtual
    # Designated initializers that leave members to their defaults are
    # intended (telemetry events); GCC 12 would flag every one.
    -Wno-missing-field-initializers)
  # GCC 12 at -O3 reports impossible overlaps in std::string's inlined
  # copies (GCC bug 105329): noise, not a finding.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(SEEDPOOL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
