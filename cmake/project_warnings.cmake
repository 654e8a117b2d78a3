# Our warning flags, applied to our own targets only (dependencies are SYSTEM includes).
function(seqcast_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Werror)
endfunction()
