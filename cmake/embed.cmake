# Embeds text files into a generated C++ source as string_views, so the binary
# carries its migrations (and web assets) and works from any directory.
#
# seqcast_embed(OUT <file.cpp> NAMESPACE <ns> FUNCTION <fn> FILES <f1> <f2> ...)
# generates:  std::vector<embedded_file> <ns>::<fn>();  sorted by file name.
function(seqcast_embed)
  cmake_parse_arguments(E "" "OUT;NAMESPACE;FUNCTION" "FILES" ${ARGN})
  # A list would be split into separate arguments of the command; pass it joined.
  string(REPLACE ";" "|" files_joined "${E_FILES}")
  add_custom_command(
    OUTPUT ${E_OUT}
    COMMAND ${CMAKE_COMMAND} -DOUT=${E_OUT} -DNS=${E_NAMESPACE} -DFN=${E_FUNCTION}
            "-DFILES=${files_joined}" -P ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    DEPENDS ${E_FILES} ${PROJECT_SOURCE_DIR}/cmake/embed_run.cmake
    COMMENT "Embedding ${E_FUNCTION}"
    VERBATIM)
endfunction()
