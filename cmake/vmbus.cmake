# Shared CMake helpers for vmbus.

# add_subdirectory() for every direct child of BASE that has a CMakeLists.txt.
macro(vmbus_add_subdirs base)
  file(GLOB _vmbus_children LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/${base}/*)
  list(SORT _vmbus_children)
  foreach(_c ${_vmbus_children})
    if(IS_DIRECTORY ${_c} AND EXISTS ${_c}/CMakeLists.txt)
      add_subdirectory(${_c})
    endif()
  endforeach()
endmacro()

# Flags for code that must stay freestanding (guest core, drivers, common ring).
set(VMBUS_FREESTANDING_FLAGS -ffreestanding ${VMBUS_WARNINGS})
# Extra checks for wire and copy-in code (STYLE 14).
set(VMBUS_STRICT_FLAGS -Wconversion -Wsign-compare)

# vmbus_unit_test(NAME SOURCES... LIBS ...): a cmocka test registered with CTest.
function(vmbus_unit_test name)
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${VMBUS_WARNINGS})
  target_compile_definitions(${name} PRIVATE VMBUS_TEST_TIME_SCALE=${VMBUS_TEST_TIME_SCALE})
  target_link_libraries(${name} PRIVATE vmbus_headers PkgConfig::CMOCKA ${T_LIBS})
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  set_tests_properties(${name} PROPERTIES TIMEOUT ${T_TIMEOUT} LABELS "${T_LABELS}"
    ENVIRONMENT "VMBUS_TEST_TIME_SCALE=${VMBUS_TEST_TIME_SCALE}")
endfunction()
