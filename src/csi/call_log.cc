#include "src/csi/call_log.h"

#include <google/protobuf/descriptor.h>

#include "src/common/logging.h"
#include "src/csi/rpc.h"

#include "csi/v1/csi.pb.h"

namespace juke::csi {
namespace {

namespace pb = google::protobuf;
using grpc::experimental::InterceptionHookPoints;

void StripSecrets(pb::Message* m) {
  const pb::Reflection* r = m->GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(*m, &fields);
  for (const pb::FieldDescriptor* f : fields) {
    if (f->options().GetExtension(::csi::v1::csi_secret)) {
      r->ClearField(m, f);
      continue;
    }
    if (f->cpp_type() != pb::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (f->is_repeated()) {
      for (int i = 0; i < r->FieldSize(*m, f); ++i) {
        StripSecrets(r->MutableRepeatedMessage(m, f, i));
      }
    } else {
      StripSecrets(r->MutableMessage(m, f));
    }
  }
}

class CallLog : public grpc::experimental::Interceptor {
 public:
  explicit CallLog(grpc::experimental::ServerRpcInfo* info)
      : method_(info->method()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::POST_RECV_MESSAGE)) {
      const auto* request =
          static_cast<const pb::Message*>(methods->GetRecvMessage());
      if (request != nullptr) {
        JUKE_LOG_DEBUG(Log(), "CSI call method={} request={}", method_,
                       Redacted(*request));
      }
    }
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status s = methods->GetSendStatus();
      if (s.ok()) {
        JUKE_LOG_INFO(Log(), "CSI call done method={}", method_);
      } else {
        JUKE_LOG_INFO(Log(), "CSI call failed method={} code={} err={}",
                      method_, static_cast<int>(s.error_code()),
                      s.error_message());
      }
    }
    methods->Proceed();
  }

 private:
  const std::string method_;
};

class CallLogFactory
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallLog(info);
  }
};

}  // namespace

std::string Redacted(const pb::Message& message) {
  std::unique_ptr<pb::Message> copy(message.New());
  copy->CopyFrom(message);
  StripSecrets(copy.get());
  return copy->ShortDebugString();
}

std::vector<
    std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
CallLogInterceptors() {
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      v;
  v.push_back(std::make_unique<CallLogFactory>());
  return v;
}

}  // namespace juke::csi
