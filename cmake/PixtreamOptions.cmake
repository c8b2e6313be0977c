# Project-wide compiler settings, applied per target with pixtream_target_options().

if(PIXTREAM_SANITIZE)
  # ASan + UBSan for every target, executables and libraries alike.
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang's UBSan -fsanitize=function mis-fires on coroutine frames.
    add_compile_options(-fno-sanitize=function)
  endif()
endif()

function(pixtream_target_options target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wnon-virtual-dtor -Wold-style-cast
    -Wcast-align -Woverloaded-virtual -Wimplicit-fallthrough)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 at -O2 flags Asio's recycling allocator (aligned_new paired with std::free) as a
    # mismatched new/delete: a false positive inside the Boost headers.
    target_compile_options(${target} PRIVATE -Wno-mismatched-new-delete)
  endif()
  if(PIXTREAM_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# pixtream_module(NAME name DEPS ...): a library under modules/NAME with public headers in
# modules/NAME/include and sources in modules/NAME/src.
function(pixtream_module name)
  cmake_parse_arguments(ARG "" "" "DEPS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS "${CMAKE_CURRENT_SOURCE_DIR}/src/*.cpp")
  add_library(pixtream_${name} STATIC ${sources})
  add_library(pixtream::${name} ALIAS pixtream_${name})
  target_include_directories(pixtream_${name} PUBLIC "${CMAKE_CURRENT_SOURCE_DIR}/include")
  target_link_libraries(pixtream_${name} PUBLIC ${ARG_DEPS})
  pixtream_target_options(pixtream_${name})
endfunction()
