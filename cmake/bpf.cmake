# BPF objects: clang -target bpf against the running kernel's BTF (CO-RE), then a
# libbpf skeleton header that C++ includes. fstrail_bpf_skeleton(NAME SOURCE) makes
# ${FSTRAIL_BPF_DIR}/NAME.skel.h and adds it to the target fstrail_bpf_skeletons.
find_program(BPF_CLANG clang REQUIRED)
find_program(BPFTOOL bpftool REQUIRED PATHS /usr/sbin /sbin)
set(FSTRAIL_BPF_DIR ${CMAKE_BINARY_DIR}/bpf)
set(FSTRAIL_VMLINUX_BTF /sys/kernel/btf/vmlinux CACHE FILEPATH "BTF the BPF programs are compiled against")
file(MAKE_DIRECTORY ${FSTRAIL_BPF_DIR})

add_custom_command(
  OUTPUT ${FSTRAIL_BPF_DIR}/vmlinux.h
  COMMAND ${BPFTOOL} btf dump file ${FSTRAIL_VMLINUX_BTF} format c > ${FSTRAIL_BPF_DIR}/vmlinux.h
  COMMENT "Generating vmlinux.h from ${FSTRAIL_VMLINUX_BTF}")

# A target, so that skeletons in other directories can wait for it.
add_custom_target(fstrail_vmlinux_h DEPENDS ${FSTRAIL_BPF_DIR}/vmlinux.h)
add_custom_target(fstrail_bpf_skeletons)
set(FSTRAIL_BPF_CFLAGS -g -O2 -Wall -Werror -target bpf -D__TARGET_ARCH_x86
    -I${FSTRAIL_BPF_DIR} -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/src)

# Every object is rebuilt when any BPF header changes (they include one another).
file(GLOB_RECURSE FSTRAIL_BPF_HEADERS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/backend/bpf/*.bpf.h)

function(fstrail_bpf_skeleton name source)
  set(obj ${FSTRAIL_BPF_DIR}/${name}.bpf.o)
  set(skel ${FSTRAIL_BPF_DIR}/${name}.skel.h)
  get_filename_component(abs_source ${source} ABSOLUTE)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${BPF_CLANG} ${FSTRAIL_BPF_CFLAGS} -c ${abs_source} -o ${obj}
    DEPENDS ${abs_source} fstrail_vmlinux_h ${PROJECT_SOURCE_DIR}/include/fstrail/wire.h ${FSTRAIL_BPF_HEADERS} ${ARGN}
    IMPLICIT_DEPENDS C ${abs_source}
    COMMENT "BPF ${name}")
  add_custom_command(
    OUTPUT ${skel}
    COMMAND ${BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}
    DEPENDS ${obj}
    COMMENT "BPF skeleton ${name}")
  add_custom_target(bpf_${name} DEPENDS ${skel})
  add_dependencies(fstrail_bpf_skeletons bpf_${name})
endfunction()
