import HostSystem

#if canImport(Glibc)
import Glibc
#endif

/// The pin directory guards the datapath: whoever can write in it can unpin a map and pin one
/// of their own in its place, which the next load fills and the programs read, or replace a
/// link. It is made 0700 (FileSystem.makeDirectory) and refused when another user than root
/// or this one owns it, or group or others can write it (or its maps/ or links/ below it).
public enum PinDirectory {
    /// Nil when the directory (and what exists of maps/ and links/) is safe; else why not.
    public static func unsafeReason(_ pinDir: String) -> String? {
        let me = geteuid()
        for path in [pinDir, "\(pinDir)/maps", "\(pinDir)/links"] {
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            let mode = st.st_mode & 0o7777
            if mode & 0o022 != 0 {
                return "\(path) is writable by \(mode & 0o020 != 0 ? "its group" : "")\(mode & 0o022 == 0o022 ? " and " : "")\(mode & 0o002 != 0 ? "others" : "") "
                    + "(mode \(String(mode, radix: 8))): whoever can write there can replace the maps the datapath reads; `chmod 0700 \(path)`"
            }
            if st.st_uid != 0 && st.st_uid != me {
                return "\(path) is owned by uid \(st.st_uid), neither root nor this user (\(me)): its owner could replace the maps the datapath reads"
            }
        }
        return nil
    }
}
