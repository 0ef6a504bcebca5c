// RE2 program size, computed by RE2 itself the way Envoy does before accepting a safe_regex
// (envoy source/common/common/regex.cc: re2::RE2 with default options and log_errors off,
// then ProgramSize() against re2.max_program_size.error_level).
//
//   programSize(pattern: string): number   — throws Error(RE2's error text) if invalid
#include <node_api.h>
#include <re2/re2.h>

#include <string>

namespace {

napi_value ProgramSize(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_valuetype type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < 1 ||
      napi_typeof(env, argv[0], &type) != napi_ok || type != napi_string) {
    napi_throw_type_error(env, nullptr, "programSize(pattern): pattern must be a string");
    return nullptr;
  }
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], nullptr, 0, &len) != napi_ok) return nullptr;
  std::string pattern(len + 1, '\0');
  if (napi_get_value_string_utf8(env, argv[0], &pattern[0], len + 1, &len) != napi_ok) return nullptr;
  pattern.resize(len);

  re2::RE2 re(pattern, re2::RE2::Quiet);
  if (!re.ok()) {
    napi_value msg, err;
    napi_create_string_utf8(env, re.error().c_str(), re.error().size(), &msg);
    napi_create_error(env, nullptr, msg, &err);
    napi_throw(env, err);
    return nullptr;
  }
  napi_value out;
  napi_create_int64(env, re.ProgramSize(), &out);
  return out;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "programSize", NAPI_AUTO_LENGTH, ProgramSize, nullptr, &fn) != napi_ok ||
      napi_set_named_property(env, exports, "programSize", fn) != napi_ok)
    return nullptr;
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
