# juke_protos(TARGET PROTO_ROOT PROTOS...)
#
# Generates C++ message and gRPC code for PROTOS (paths relative to
# PROTO_ROOT) into the build tree and wraps it in a static library TARGET.
function(juke_protos target proto_root)
  set(gen_dir ${CMAKE_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${gen_dir})
  set(srcs)
  foreach(proto ${ARGN})
    string(REGEX REPLACE "\\.proto$" "" base ${proto})
    set(out ${gen_dir}/${base}.pb.cc ${gen_dir}/${base}.pb.h
            ${gen_dir}/${base}.grpc.pb.cc ${gen_dir}/${base}.grpc.pb.h)
    add_custom_command(
      OUTPUT ${out}
      COMMAND protobuf::protoc
        --proto_path=${proto_root}
        --cpp_out=${gen_dir}
        --grpc_out=${gen_dir}
        --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
        ${proto_root}/${proto}
      DEPENDS ${proto_root}/${proto}
      COMMENT "protoc ${proto}")
    list(APPEND srcs ${gen_dir}/${base}.pb.cc ${gen_dir}/${base}.grpc.pb.cc)
  endforeach()
  add_library(${target} STATIC ${srcs})
  target_include_directories(${target} SYSTEM PUBLIC ${gen_dir})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
