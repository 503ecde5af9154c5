package cli

// checkEnrolment says plainly when the hub's IT team revoked this device:
// nothing else works until it is enrolled again. It adds no line otherwise
// (the hub line already says whether a hub is configured).
func checkEnrolment(env *DoctorEnv) []DoctorCheck {
	if env.Status == nil || !env.Status.Reports.DeviceRevoked {
		return nil
	}
	return []DoctorCheck{{Name: "enrolment", Status: CheckFail,
		Detail: "this device was revoked by its IT team: reports cannot be sent until it is enrolled again",
		Fix:    "ask your IT team for a new enrolment code, then run `detour enrol --hub URL --code CODE`"}}
}
