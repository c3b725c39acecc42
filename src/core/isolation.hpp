// Process isolation primitives for the engine, the process that parses
// guest traffic: become an unprivileged user, drop every capability, set
// no_new_privs and install a seccomp allowlist of the system calls the engine
// makes. The order and the opens done before it live in privsep/sandbox.hpp.
//
// Seccomp policy: a system call not on the allowlist fails with EPERM (a
// missed call breaks the one operation that made it, with an error that
// says "Operation not permitted", and the engine goes on); calls that only
// an attacker would make (execve, ptrace, mount, setns, bpf, module loading,
// keyctl, ...) kill the whole process. SeccompMode::Log allows and logs
// unlisted calls to the kernel log instead (for finding misses: see
// `journalctl -k` / dmesg "type=1326"), SeccompMode::Off installs nothing.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>

namespace vnet::isolation {

// Sanitizer builds (tests only) need a few calls the filter otherwise
// forbids (the symbolizer's execve, the leak checker's ptrace).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

enum class SeccompMode { On, Log, Off };

std::optional<SeccompMode> parse_seccomp_mode(std::string_view text);
const char* to_string(SeccompMode mode);

struct UserIds {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
};

// Looks the user up; throws UserError if there is none.
UserIds lookup_user(const std::string& name);
// The engine's user when none is named: "vnet" if the install created it, else "nobody".
std::string default_user();

// As root: supplementary groups cleared, gid and uid set (real, effective
// and saved), every capability dropped from all sets including the bounding
// and ambient sets. Not as root: only the capability sets are cleared.
void drop_privileges(const std::optional<UserIds>& user);
void set_no_new_privs();
// opens_taps_itself: no privileged helper, so TAP ioctls (TUNSETIFF...) and
// setns (netns=) stay allowed; they fail on missing capabilities instead.
void install_seccomp(SeccompMode mode, bool opens_taps_itself);
// The privileged helper's own, narrower allowlist (same default actions).
void install_helper_seccomp(SeccompMode mode);

// What /proc/self/status says about this process.
struct ProcessSecurity {
  long uid = -1;
  long gid = -1;
  std::string cap_eff;     // hex, as the kernel prints it
  int no_new_privs = -1;
  int seccomp = -1;        // 0 none, 1 strict, 2 filter
};
ProcessSecurity read_process_security();

}  // namespace vnet::isolation
