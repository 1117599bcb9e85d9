#pragma once

#include <google/protobuf/message.h>
#include <grpcpp/support/server_interceptor.h>

#include <memory>
#include <string>
#include <vector>

// Logging of every CSI call, in one place: a gRPC server interceptor that
// logs each request (with its secrets stripped) and the status it ends
// with. Handlers never log requests themselves, so no secret can slip into
// a log line.
namespace juke::csi {

// `message` as one line of text with every field the CSI spec marks as a
// secret (the csi_secret field option), at any depth, left out.
std::string Redacted(const google::protobuf::Message& message);

// Interceptor factories to pass to ServerBuilder's
// experimental().SetInterceptorCreators().
std::vector<
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
CallLogInterceptors();

}  // namespace juke::csi
